using Ingestion.Hosting;
using Ingestion.Running;
using Ingestion.Sinks;
using Ingestion.Sources.Feeds;
using Ingestion.Sources.Ics;
using Ingestion.Sources.Tests.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sources.Tests.Feeds;

/// <summary>A clock the test moves by hand (timers still run in real time).</summary>
internal sealed class ManualClock(DateTimeOffset now) : TimeProvider
{
    public DateTimeOffset Now { get; set; } = now;

    public override DateTimeOffset GetUtcNow() => Now;
}

/// <summary>A container with the runtime (in-memory stores and sink) and one feed or calendar source.</summary>
internal sealed class FeedRunHarness : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private FeedRunHarness(ServiceProvider services) => _services = services;

    public IServiceProvider Services => _services;

    public IIngestionRunner Runner => _services.GetRequiredService<IIngestionRunner>();

    public InMemorySink Sink => (InMemorySink)_services.GetRequiredService<IIngestionSink>();

    public static Action<SourceOptions> Runtime(long maxRejected = 0) => o =>
    {
        o.MaxRejected = maxRejected;
        o.MaxRetryAttempts = 1;
        o.RetryDelay = TimeSpan.FromMilliseconds(5);
        o.BatchSize = 20;
    };

    public static FeedRunHarness Feed(string url, long maxRejected = 0) =>
        Build(b => b.AddFeedSource("news", o =>
        {
            o.Url = url;
            o.Http = SourceHttpClientTests.FastOptions();
        }, Runtime(maxRejected)));

    public static FeedRunHarness Calendar(string url, TimeProvider clock, long maxRejected = 0, Action<IcsSourceOptions>? configure = null) =>
        Build(
            b => b.AddIcsSource("agenda", o =>
            {
                o.Url = url;
                o.Http = SourceHttpClientTests.FastOptions();
                configure?.Invoke(o);
            }, Runtime(maxRejected)),
            clock);

    private static FeedRunHarness Build(Action<IIngestionBuilder> configure, TimeProvider? clock = null)
    {
        var services = new ServiceCollection();
        if (clock is not null)
        {
            services.AddSingleton<TimeProvider>(clock);
        }

        configure(services.AddIngestion());
        return new FeedRunHarness(services.BuildServiceProvider());
    }

    public Task<IngestionResult> RunAsync(string source, RunRequest? request = null) => Runner.RunAsync(source, request, CancellationToken.None);

    public ValueTask DisposeAsync() => _services.DisposeAsync();
}
