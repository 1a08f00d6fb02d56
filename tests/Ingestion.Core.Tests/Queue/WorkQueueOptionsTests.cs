using Ingestion.Hosting;
using Ingestion.Queue;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Ingestion.Core.Tests.Queue;

public class WorkQueueOptionsTests
{
    [Fact]
    public void Retry_delays_double_from_the_base_up_to_the_cap_with_bounded_jitter()
    {
        var o = new WorkQueueOptions { RetryBaseDelay = TimeSpan.FromSeconds(1), RetryMaxDelay = TimeSpan.FromSeconds(30) };
        Assert.Equal(TimeSpan.FromSeconds(1), o.RetryDelay(1, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(2), o.RetryDelay(2, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(8), o.RetryDelay(4, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(30), o.RetryDelay(10, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(30), o.RetryDelay(int.MaxValue, 1));
        Assert.Equal(TimeSpan.FromSeconds(0.8), o.RetryDelay(1, 0));
        Assert.Equal(TimeSpan.FromSeconds(1.2), o.RetryDelay(1, 1));
    }

    [Fact]
    public void Defaults_derive_from_the_lease_and_the_concurrency()
    {
        var o = new WorkQueueOptions { Concurrency = 8, Lease = TimeSpan.FromSeconds(30) };
        Assert.Equal(8, o.EffectiveBatchSize);
        Assert.Equal(TimeSpan.FromSeconds(10), o.EffectiveHeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(15), o.EffectiveRescueInterval);
        Assert.Empty(o.Validate("files"));
    }

    [Fact]
    public void Every_bad_setting_is_reported_with_its_name()
    {
        var o = new WorkQueueOptions
        {
            Concurrency = 0,
            BatchSize = -1,
            Lease = TimeSpan.FromMilliseconds(10),
            HeartbeatInterval = TimeSpan.FromMinutes(1),
            MaxAttempts = 0,
            RetryBaseDelay = TimeSpan.FromMinutes(5),
            RetryMaxDelay = TimeSpan.FromMinutes(1),
            PollInterval = TimeSpan.Zero,
            ShutdownGracePeriod = TimeSpan.FromSeconds(-1),
        };
        var errors = o.Validate("files");
        foreach (var setting in new[] { "Concurrency", "BatchSize", "Lease", "HeartbeatInterval", "MaxAttempts", "RetryBaseDelay", "PollInterval", "ShutdownGracePeriod" })
        {
            Assert.Contains(errors, e => e.StartsWith($"Ingestion:Queues:files:{setting}", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("-leading")]
    [InlineData("has space")]
    [InlineData("semi;colon")]
    public void Bad_queue_names_are_refused(string name)
    {
        Assert.NotNull(WorkQueueOptions.QueueNameProblem(name));
        Assert.Throws<ArgumentException>(() => new ServiceCollection().AddIngestion().AddWorkQueue<NoopHandler>(name, 1));
    }

    [Fact]
    public async Task Settings_bind_from_configuration_and_a_worker_without_a_store_fails_validation_at_start()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Ingestion:Queues:files:BatchSize"] = "250",
            ["Ingestion:Queues:files:MaxAttempts"] = "0",
        }).Build();
        var services = new ServiceCollection();
        services.AddIngestion(config.GetSection("Ingestion")).AddWorkQueue<NoopHandler>("files", 4);
        await using var sp = services.BuildServiceProvider();
        var o = sp.GetRequiredService<IOptionsMonitor<WorkQueueOptions>>().Get("files");
        Assert.Equal((4, 250, 0), (o.Concurrency, o.BatchSize, o.MaxAttempts));

        var e = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            foreach (var hosted in sp.GetServices<IHostedService>())
            {
                await hosted.StartAsync(CancellationToken.None);
            }
        });
        Assert.Contains(e.Failures, f => f.Contains("Ingestion:Queues:files:MaxAttempts", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("no queue store", StringComparison.Ordinal));
    }

    private sealed class NoopHandler : IWorkItemHandler
    {
        public Task HandleAsync(WorkItem item, CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
