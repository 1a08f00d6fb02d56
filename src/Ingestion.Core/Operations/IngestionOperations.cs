using Ingestion.Diagnostics;
using Ingestion.Hosting;
using Ingestion.Plugins;
using Ingestion.Queue;
using Ingestion.Running;
using Ingestion.Scheduling;
using Ingestion.Stores;
using Ingestion.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Ingestion.Operations;

/// <summary>The default <see cref="IIngestionOperations"/>, over the registered runner and stores.</summary>
/// <remarks>Scheduling, queues and plug-ins are optional: without them their lists are empty and their actions say what is missing.</remarks>
public sealed class IngestionOperations : IIngestionOperations
{
    private const string BuiltInAssembly = "Ingestion.Sources";
    private readonly IServiceProvider _services;
    private readonly SourceCatalog _catalog;
    private readonly IOptionsMonitor<SourceOptions> _sourceOptions;
    private readonly IImportJobStore _jobs;
    private readonly ISourceStateStore _states;
    private readonly ActiveRuns _active;
    private readonly TimeProvider _time;

    /// <summary>Creates the service.</summary>
    /// <param name="services">The container (the runner, scheduling, queues and plug-ins are resolved from it when used).</param>
    public IngestionOperations(IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        _services = services;
        _catalog = services.GetRequiredService<SourceCatalog>();
        _sourceOptions = services.GetRequiredService<IOptionsMonitor<SourceOptions>>();
        _jobs = services.GetRequiredService<IImportJobStore>();
        _states = services.GetRequiredService<ISourceStateStore>();
        _active = services.GetRequiredService<ActiveRuns>();
        _time = services.GetService<TimeProvider>() ?? TimeProvider.System;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<SourceOverview>> GetSourcesAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var next = (_services.GetService<IIngestionScheduler>()?.GetNextRuns(now, 1) ?? [])
            .Where(n => n.Active && n.Slots.Count > 0)
            .ToList();
        var pauses = await PausesAsync(cancellationToken).ConfigureAwait(false);
        var list = new List<SourceOverview>(_catalog.Sources.Count);
        foreach (var registration in _catalog.Sources)
        {
            var name = registration.Name;
            var last = await _jobs.ListRecentAsync(1, name, cancellationToken).ConfigureAwait(false);
            var state = await _states.GetAsync(name, cancellationToken).ConfigureAwait(false);
            var soonest = next.Where(n => n.Source == name && !pauses.ContainsKey(n.Schedule)).MinBy(n => n.Slots[0]);
            list.Add(new SourceOverview
            {
                Name = name,
                Origin = OriginOf(registration),
                OriginDetail = registration.Origin,
                Enabled = _sourceOptions.Get(name).Enabled,
                RunningHere = _active.IsRunning(name),
                LastRun = last.Count > 0 ? last[0] : null,
                LastSuccessAt = state.LastSuccess,
                NextScheduledAt = soonest?.Slots[0],
                NextSchedule = soonest?.Schedule,
            });
        }

        return list;
    }

    /// <inheritdoc />
    public async Task<Page<ImportJob>> GetJobsAsync(ImportJobQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        query.ThrowIfInvalid();
        return await _jobs.QueryAsync(query, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task<JobDetails?> GetJobAsync(Guid jobId, int rejectedOffset, int rejectedLimit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rejectedOffset);
        ArgumentOutOfRangeException.ThrowIfLessThan(rejectedLimit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rejectedLimit, 1000);
        var job = await _jobs.GetAsync(jobId, cancellationToken).ConfigureAwait(false);
        if (job is null)
        {
            return null;
        }

        var rejected = await _jobs.ListRejectedAsync(jobId, rejectedOffset, rejectedLimit, cancellationToken).ConfigureAwait(false);
        return new JobDetails(job, rejected);
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ScheduleOverview>> GetSchedulesAsync(int nextCount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(nextCount);
        if (_services.GetService<IIngestionScheduler>() is not { } scheduler || _services.GetService<IScheduleStore>() is not { } store)
        {
            return [];
        }

        var pauses = await store.GetPausesAsync(cancellationToken).ConfigureAwait(false);
        var list = new List<ScheduleOverview>();
        foreach (var n in scheduler.GetNextRuns(_time.GetUtcNow(), nextCount))
        {
            var last = await store.ListRunsAsync(1, n.Schedule, cancellationToken).ConfigureAwait(false);
            var pause = pauses.GetValueOrDefault(n.Schedule);
            list.Add(new ScheduleOverview
            {
                Name = n.Schedule,
                Source = n.Source,
                Cron = n.Cron,
                TimeZone = n.TimeZone.Id,
                Active = n.Active && pause is null,
                Pause = pause,
                NextRuns = n.Slots.Select(s => new ScheduledTime(s, TimeZoneInfo.ConvertTime(s, n.TimeZone))).ToList(),
                LastRun = last.Count > 0 ? last[0] : null,
            });
        }

        return list;
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<ScheduleRun>> GetScheduleRunsAsync(string? schedule, int count, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return _services.GetService<IScheduleStore>() is { } store
            ? await store.ListRunsAsync(count, schedule, cancellationToken).ConfigureAwait(false)
            : [];
    }

    /// <inheritdoc />
    public async Task<IReadOnlyList<WorkQueueStats>> GetQueueStatsAsync(CancellationToken cancellationToken)
    {
        if (_services.GetService<IWorkQueueStore>() is not { } store)
        {
            return [];
        }

        var telemetry = _services.GetService<IngestionTelemetry>();
        var list = new List<WorkQueueStats>();
        foreach (var queue in QueueNames())
        {
            var stats = await store.GetStatsAsync(queue, cancellationToken).ConfigureAwait(false);
            telemetry?.QueueSampled(queue, stats.Pending, stats.Running, stats.Dead);
            list.Add(stats);
        }

        return list;
    }

    /// <inheritdoc />
    public Task<IReadOnlyList<DeadWorkItem>> GetDeadItemsAsync(string queue, int limit, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        return QueueStore(queue).ListDeadAsync(queue, limit, cancellationToken);
    }

    /// <inheritdoc />
    public Task<int> RequeueDeadAsync(string queue, IReadOnlyCollection<string>? keys, CancellationToken cancellationToken) =>
        QueueStore(queue).RequeueDeadAsync(queue, keys, cancellationToken);

    /// <inheritdoc />
    public IReadOnlyList<PluginInfo> GetPlugins() => _services.GetService<PluginManager>()?.Plugins ?? [];

    /// <inheritdoc />
    public IReadOnlyList<ActiveRun> GetActiveRuns() => _active.List();

    /// <inheritdoc />
    public Task<IngestionRunSummary> RunAsync(RunSourcesRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = request.Validate().ToList();
        errors.AddRange(request.Sources.Where(s => _catalog.Find(s) is null).Select(s => $"No source named '{s}' is registered."));
        if (errors.Count > 0)
        {
            throw new ArgumentException($"{string.Join(" ", errors)} Registered sources: {KnownSources()}.", nameof(request));
        }

        var run = new RunRequest
        {
            Mode = request.FullRefresh || request.Verify ? IngestionMode.FullRefresh : IngestionMode.Incremental,
            Verify = request.Verify,
            DryRun = request.DryRun,
            Trigger = request.Trigger,
            RequestedBy = request.RequestedBy,
            Progress = request.Progress,
        };
        var many = new RunManyRequest
        {
            Sources = request.All ? null : request.Sources,
            Parallel = request.Parallelism > 1,
            MaxDegreeOfParallelism = request.Parallelism,
            Run = run,
        };
        return _services.GetRequiredService<IIngestionRunner>().RunManyAsync(many, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<SourceState> GetStateAsync(string source, CancellationToken cancellationToken)
    {
        RequireSource(source);
        return await _states.GetAsync(source, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public Task<SourceState> ResetStateAsync(string source, string requestedBy, CancellationToken cancellationToken)
    {
        RequireSource(source);
        return Editor().ResetAsync(source, requestedBy, null, cancellationToken);
    }

    /// <inheritdoc />
    public Task<SourceState> SetCursorAsync(string source, string cursor, string requestedBy, CancellationToken cancellationToken)
    {
        RequireSource(source);
        ArgumentException.ThrowIfNullOrWhiteSpace(cursor);
        return Editor().SetCursorAsync(source, CursorKind.Opaque, cursor, requestedBy, null, cancellationToken);
    }

    /// <inheritdoc />
    public async Task<SchedulePause> PauseScheduleAsync(string schedule, string requestedBy, CancellationToken cancellationToken)
    {
        var store = ScheduleStore(schedule);
        var pause = new SchedulePause(_time.GetUtcNow(), requestedBy);
        await store.SetPauseAsync(schedule, pause, cancellationToken).ConfigureAwait(false);
        return pause;
    }

    /// <inheritdoc />
    public async Task<bool> ResumeScheduleAsync(string schedule, CancellationToken cancellationToken)
    {
        var store = ScheduleStore(schedule);
        var paused = (await store.GetPausesAsync(cancellationToken).ConfigureAwait(false)).ContainsKey(schedule);
        await store.SetPauseAsync(schedule, null, cancellationToken).ConfigureAwait(false);
        return paused;
    }

    /// <inheritdoc />
    public bool CancelRun(Guid runId) => _active.Cancel(runId);

    /// <summary>Tells a built-in source from a host's or a plug-in's.</summary>
    /// <param name="registration">The registration.</param>
    /// <returns>The origin.</returns>
    public static SourceOrigin OriginOf(SourceRegistration registration)
    {
        ArgumentNullException.ThrowIfNull(registration);
        if (registration.Origin.StartsWith("plug-in", StringComparison.Ordinal))
        {
            return SourceOrigin.PlugIn;
        }

        // Built-in sources register a factory compiled in Ingestion.Sources (AddCsvSource, AddCkanSource...).
        var assembly = registration.SourceType?.Assembly ?? registration.Factory.Method.DeclaringType?.Assembly;
        return assembly?.GetName().Name == BuiltInAssembly ? SourceOrigin.BuiltIn : SourceOrigin.Host;
    }

    private IEnumerable<string> QueueNames() =>
        _services.GetServices<WorkQueueRegistration>().Select(r => r.Queue).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);

    private IWorkQueueStore QueueStore(string queue)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(queue);
        return _services.GetService<IWorkQueueStore>()
            ?? throw new InvalidOperationException($"Queue '{queue}': the host registered no queue store (UsePostgresQueue()).");
    }

    private IScheduleStore ScheduleStore(string schedule)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(schedule);
        if (_services.GetService<IIngestionScheduler>() is not { } scheduler || _services.GetService<IScheduleStore>() is not { } store)
        {
            throw new InvalidOperationException($"Schedule '{schedule}': the host has no scheduling (AddScheduling()).");
        }

        var known = scheduler.GetNextRuns(_time.GetUtcNow(), 0).Select(n => n.Schedule).ToList();
        if (!known.Contains(schedule, StringComparer.Ordinal))
        {
            throw new ArgumentException($"No schedule is named '{schedule}' (configured: {(known.Count == 0 ? "none" : string.Join(", ", known))}).", nameof(schedule));
        }

        return store;
    }

    private async Task<IReadOnlyDictionary<string, SchedulePause>> PausesAsync(CancellationToken cancellationToken) =>
        _services.GetService<IScheduleStore>() is { } store
            ? await store.GetPausesAsync(cancellationToken).ConfigureAwait(false)
            : new Dictionary<string, SchedulePause>();

    private SourceStateEditor Editor() => new(
        _states,
        _jobs,
        _services.GetRequiredService<IRunLockProvider>(),
        _time,
        _services.GetService<ILoggerFactory>()?.CreateLogger("Ingestion.Operations"),
        _services.GetService<IOptions<IngestionOptions>>()?.Value.HostName);

    private void RequireSource(string source)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(source);
        if (_catalog.Find(source) is null)
        {
            throw new ArgumentException($"No source named '{source}' is registered. Registered sources: {KnownSources()}.", nameof(source));
        }
    }

    private string KnownSources() => _catalog.Sources.Count == 0 ? "none" : string.Join(", ", _catalog.Sources.Select(s => s.Name));
}
