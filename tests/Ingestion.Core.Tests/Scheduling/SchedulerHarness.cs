using Ingestion.Core.Tests.Running;
using Ingestion.Hosting;
using Ingestion.Scheduling;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Ingestion.Core.Tests.Scheduling;

/// <summary>A scheduler on a manual clock, an in-memory store and real runner, configured from in-memory settings.</summary>
internal sealed class SchedulerHarness : IAsyncDisposable
{
    private SchedulerHarness(ServiceProvider services, IConfigurationRoot config, FakeTimeProvider time, InMemoryScheduleStore store)
    {
        Services = services;
        Config = config;
        Time = time;
        Store = store;
    }

    public ServiceProvider Services { get; }

    public IConfigurationRoot Config { get; }

    public FakeTimeProvider Time { get; }

    public InMemoryScheduleStore Store { get; }

    public IngestionScheduler Scheduler => Services.GetRequiredService<IngestionScheduler>();

    public static Action<SourceOptions> NoRunnerRetries => o =>
    {
        o.MaxRetryAttempts = 0;
        o.Timeout = null;
        o.BatchSize = 1;
    };

    public static SchedulerHarness Create(DateTimeOffset start, IDictionary<string, string?> settings, Action<IIngestionBuilder> sources, InMemoryScheduleStore? store = null, Action<IServiceCollection>? services = null)
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var time = new FakeTimeProvider(start);
        store ??= new InMemoryScheduleStore();
        var collection = new ServiceCollection();
        collection.AddSingleton<TimeProvider>(time);
        collection.AddSingleton<IScheduleStore>(store);
        services?.Invoke(collection);
        var builder = collection.AddIngestion(config.GetSection("Ingestion"), o => o.HostName = "host-a");
        sources(builder);
        builder.AddScheduling();
        return new SchedulerHarness(collection.BuildServiceProvider(), config, time, store);
    }

    public static Func<IServiceProvider, IIngestionSource> Items(int count = 3) => _ => new ScriptedSource((_, ct) => ScriptedSource.Items(count, ct: ct));

    public Task StartAsync() => Scheduler.StartAsync(CancellationToken.None);

    /// <summary>Advances the clock step by step until the condition holds (the scheduler works between steps).</summary>
    public async Task AdvanceUntilAsync(Func<bool> condition, TimeSpan step, int maxSteps, [System.Runtime.CompilerServices.CallerLineNumber] int line = 0)
    {
        for (var i = 0; i < maxSteps && !condition(); i++)
        {
            Time.Advance(step);
            await Settle();
        }

        await WaitForAsync(condition, () => $"line {line}, now {Time.GetUtcNow():O}, runs: " + string.Join("; ", Runs().Select(r => $"{r.Slot:O} a{r.Attempt} {r.Status} {r.Error}")));
    }

    /// <summary>Advances by a total, in steps, letting the scheduler work between them.</summary>
    public async Task AdvanceAsync(TimeSpan total, TimeSpan step)
    {
        for (var done = TimeSpan.Zero; done < total; done += step)
        {
            Time.Advance(step);
            await Settle();
        }
    }

    public static async Task WaitForAsync(Func<bool> condition, Func<string>? describe = null)
    {
        var until = DateTime.UtcNow.AddSeconds(20);
        while (!condition())
        {
            if (DateTime.UtcNow > until)
            {
                Assert.Fail("The condition did not hold within 20 s of real time. " + describe?.Invoke());
            }

            await Task.Delay(10);
        }
    }

    public List<ScheduleRun> Runs(string? schedule = null) => Store.Runs.Where(r => schedule is null || r.Schedule == schedule).OrderBy(r => r.Slot).ThenBy(r => r.Attempt).ToList();

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await Scheduler.StopAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }

        await Services.DisposeAsync();
    }

    private static async Task Settle()
    {
        // Let the loop and runs react to the new time before the next step (no assertion depends on this being long enough).
        for (var i = 0; i < 3; i++)
        {
            await Task.Delay(5);
        }
    }
}
