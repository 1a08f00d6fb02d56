using System.Globalization;
using Ingestion.Dedup;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Sinks;
using Ingestion.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Ingestion.Postgres.Dedup;

/// <summary>One source set under cross-source dedup: the matcher of its record type, the policy and the sources.</summary>
public sealed class DedupRegistration
{
    internal DedupRegistration(Type recordType, RecordMatcher matcher, DedupPolicy policy, IReadOnlyList<string> sources, Func<string, string, object, MatchProfile> profile)
    {
        RecordType = recordType;
        Matcher = matcher;
        Policy = policy;
        Sources = sources;
        ProfileOf = profile;
    }

    /// <summary>The record class the matcher reads: the sources' records are of this class or derive from it (<see cref="object"/>: any class).</summary>
    public Type RecordType { get; }

    /// <summary>The matcher.</summary>
    public RecordMatcher Matcher { get; }

    /// <summary>The policy.</summary>
    public DedupPolicy Policy { get; }

    /// <summary>The sources whose records are matched against each other.</summary>
    public IReadOnlyList<string> Sources { get; }

    /// <summary>Builds the profile of a record (of <see cref="RecordType"/> or a class derived from it) with the typed matcher.</summary>
    internal Func<string, string, object, MatchProfile> ProfileOf { get; }
}

/// <summary>Sets up cross-source dedup in PostgreSQL.</summary>
public static class DedupServiceCollectionExtensions
{
    /// <summary>
    /// Matches the records of a set of sources against each other after each written batch, and links,
    /// merges or reports the duplicates per the policy (<c>record_links</c> in the library's schema). The
    /// counts appear in each run's result and job as <see cref="IngestionCounts.Linked"/> and
    /// <see cref="IngestionCounts.ForReview"/>. Requires <c>UsePostgres()</c>.
    /// The sources may yield different classes when the matcher reads a common base class: a matcher built with
    /// <c>RecordMatcher.For&lt;object&gt;</c> whose selectors switch on the class matches a CSV source's
    /// <c>DynamicRecord</c> against an ICS source's <c>CalendarEvent</c>.
    /// </summary>
    /// <typeparam name="TRecord">The record class the matcher reads; each source yields it or a class derived from it.</typeparam>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="matcher">The matcher of the record type.</param>
    /// <param name="policy">Link, merge or report only.</param>
    /// <param name="sources">The names of the sources in the set (at least two).</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentException">Fewer than two sources, or a source already in another set.</exception>
    public static IIngestionBuilder AddDedup<TRecord>(this IIngestionBuilder builder, RecordMatcher<TRecord> matcher, DedupPolicy policy, params string[] sources)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(matcher);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(sources);
        if (sources.Distinct(StringComparer.Ordinal).Count() < 2)
        {
            throw new ArgumentException($"Dedup of '{matcher.RecordType}' needs at least two distinct sources.", nameof(sources));
        }

        var existing = builder.Services.Where(d => d.ServiceType == typeof(DedupRegistration)).Select(d => (DedupRegistration)d.ImplementationInstance!).ToList();
        if (existing.SelectMany(r => r.Sources).Intersect(sources, StringComparer.Ordinal).FirstOrDefault() is { } twice)
        {
            throw new ArgumentException($"Source '{twice}' is already in another dedup set; a source belongs to one set.", nameof(sources));
        }

        builder.UsePostgres();
        builder.Services.AddPostgresMigration(DedupMigrations.V1);
        builder.Services.AddPostgresMigration(DedupMigrations.V2);
        builder.Services.AddPostgresMigration(DedupMigrations.V3);
        builder.Services.TryAddSingleton<PostgresDedupStore>();
        builder.Services.TryAddSingleton<RecordLinkReview>();
        builder.Services.AddSingleton(new DedupRegistration(typeof(TRecord), matcher, policy, sources.ToArray(), (source, id, record) => matcher.Profile(source, id, (TRecord)record)));
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ISinkHook, DedupSinkHook>());
        var names = sources.ToArray();
        builder.Catalog().AddStartupCheck(sp =>
        {
            var catalog = sp.GetRequiredService<SourceCatalog>();
            return names.Where(n => catalog.Find(n) is null).Select(n => $"Dedup of '{matcher.RecordType}' names source '{n}', which is not registered.");
        });
        return builder;
    }
}

/// <summary>The sink hook that runs cross-source dedup after each batch of a source in a dedup set.</summary>
internal sealed class DedupSinkHook(IEnumerable<DedupRegistration> registrations, PostgresDedupStore store) : ISinkHook
{
    public ValueTask<ISinkHookRun<TRecord>?> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
        where TRecord : class
    {
        var registration = registrations.FirstOrDefault(r => r.Sources.Contains(run.SourceName, StringComparer.Ordinal));
        if (registration is null)
        {
            return ValueTask.FromResult<ISinkHookRun<TRecord>?>(null);
        }

        if (!registration.RecordType.IsAssignableFrom(typeof(TRecord)))
        {
            throw new InvalidOperationException($"Source '{run.SourceName}' yields {typeof(TRecord).Name} records, but its dedup set matches {registration.RecordType.Name} records.");
        }

        return ValueTask.FromResult<ISinkHookRun<TRecord>?>(new Run<TRecord>(registration, store, run));
    }

    private sealed class Run<TRecord>(DedupRegistration registration, PostgresDedupStore store, SinkRun run) : ISinkHookRun<TRecord>
        where TRecord : class
    {
        private readonly RecordValues<TRecord> _values = new(run.Schema);

        private IReadOnlyList<MatchProfile> _staged = [];

        public async ValueTask BeforeBatchAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken)
        {
            // Filed as pending and committed before the batch (and its checkpoint) is: if the run fails before the
            // matching below commits, the next batch or completion of this source matches them.
            _staged = Profiles(batch);
            if (!run.IsDryRun)
            {
                await store.StagePendingAsync(registration.Matcher, _staged, cancellationToken).ConfigureAwait(false);
            }
        }

        public async ValueTask<SinkBatchResult> AfterBatchAsync(SinkBatch<TRecord> batch, SinkBatchResult written, CancellationToken cancellationToken)
        {
            var profiles = _staged;
            _staged = [];
            var result = run.IsDryRun
                ? await store.MatchBatchAsync(registration.Matcher, registration.Policy, profiles, run.RunId, dryRun: true, cancellationToken).ConfigureAwait(false)
                : await store.MatchPendingAsync(registration.Matcher, registration.Policy, run.SourceName, profiles, run.RunId, cancellationToken).ConfigureAwait(false);
            return written with { Linked = written.Linked + result.Linked, ForReview = written.ForReview + result.ForReview };
        }

        public async ValueTask<SinkCompletion> AfterCompleteAsync(SinkCompletion completion, CancellationToken cancellationToken)
        {
            // Records a failed attempt left pending are matched even when this run read nothing new.
            if (!run.IsDryRun)
            {
                await store.MatchPendingAsync(registration.Matcher, registration.Policy, run.SourceName, [], run.RunId, cancellationToken).ConfigureAwait(false);
            }

            return completion;
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private List<MatchProfile> Profiles(SinkBatch<TRecord> batch)
        {
            var profiles = new List<MatchProfile>(batch.Records.Count);
            foreach (var record in batch.Records)
            {
                if (SourceId(record) is { } id)
                {
                    profiles.Add(registration.ProfileOf(run.SourceName, id, record));
                }
            }

            return profiles;
        }

        private string? SourceId(TRecord record)
        {
            var schema = _values.SchemaOf(record);
            var parts = new List<string>(schema.KeyColumns.Count);
            foreach (var k in schema.KeyColumns)
            {
                if (k.IsSourceName)
                {
                    continue;
                }

                if (_values.Get(record, k, run.SourceName) is not { } v)
                {
                    return null; // the sink rejects records with a null key
                }

                parts.Add(Convert.ToString(v, CultureInfo.InvariantCulture) ?? string.Empty);
            }

            return string.Join('|', parts);
        }
    }
}
