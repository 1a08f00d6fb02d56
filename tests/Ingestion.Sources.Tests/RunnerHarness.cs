using Ingestion.Hosting;
using Ingestion.Running;
using Ingestion.Sinks;
using Ingestion.Stores;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sources.Tests;

/// <summary>A container with the runner, the in-memory sink and stores, for running sources end to end.</summary>
internal sealed class RunnerHarness : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    public RunnerHarness(Action<IIngestionBuilder> configure, Action<IServiceCollection>? services = null)
    {
        var collection = new ServiceCollection();
        collection.AddLogging();
        var builder = collection.AddIngestion();
        configure(builder);
        services?.Invoke(collection);
        _services = collection.BuildServiceProvider();
    }

    public IServiceProvider Services => _services;

    public IIngestionRunner Runner => _services.GetRequiredService<IIngestionRunner>();

    public InMemorySink Sink => (InMemorySink)_services.GetRequiredService<IIngestionSink>();

    public ISourceStateStore States => _services.GetRequiredService<ISourceStateStore>();

    public Task<IngestionResult> RunAsync(string source, IngestionMode mode = IngestionMode.Incremental) =>
        Runner.RunAsync(source, new RunRequest { Mode = mode }, CancellationToken.None);

    public Task<SourceState> StateAsync(string source) => States.GetAsync(source, CancellationToken.None).AsTask();

    public ValueTask DisposeAsync() => _services.DisposeAsync();
}
