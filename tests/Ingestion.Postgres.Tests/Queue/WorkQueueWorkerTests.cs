using System.Collections.Concurrent;
using Ingestion.Hosting;
using Ingestion.Postgres.Queue;
using Ingestion.Queue;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ingestion.Postgres.Tests.Queue;

public class WorkQueueWorkerTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly CancellationToken None = CancellationToken.None;

    private static WorkQueueOptions Fast(int concurrency, int batch = 0) => new()
    {
        Concurrency = concurrency,
        BatchSize = batch,
        Lease = TimeSpan.FromSeconds(20),
        RetryBaseDelay = TimeSpan.FromMilliseconds(100),
        RetryMaxDelay = TimeSpan.FromSeconds(1),
        PollInterval = TimeSpan.FromMinutes(5),
        MaxAttempts = 3,
    };

    [Fact]
    public async Task A_poison_item_is_retried_with_backoff_then_dead_with_its_error_while_the_others_flow()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        var done = new ConcurrentDictionary<string, int>();
        var poisonAttempts = new ConcurrentQueue<(int Attempt, DateTimeOffset At, string? LastError)>();
        await q.Store.EnqueueManyAsync("mixed", QueueTestStore.Items(Enumerable.Range(0, 300).Select(i => i == 150 ? "poison" : $"ok{i}")), None);
        await using var worker = new WorkQueueWorker("mixed", Fast(4, 20), q.Store, (item, ct) =>
        {
            if (item.Key == "poison")
            {
                poisonAttempts.Enqueue((item.Attempt, DateTimeOffset.UtcNow, item.LastError));
                throw new InvalidDataException($"cannot parse {item.Key} at byte 42");
            }

            done.AddOrUpdate(item.Key, 1, (_, n) => n + 1);
            return Task.CompletedTask;
        });
        await worker.StartAsync(None);
        await WaitUntilAsync(async () => (await q.Store.GetStatsAsync("mixed", None)).Dead == 1 && done.Count == 299);
        await worker.StopAsync(None);

        Assert.All(done.Values, n => Assert.Equal(1, n));
        var attempts = poisonAttempts.ToArray();
        Assert.Equal([1, 2, 3], attempts.Select(a => a.Attempt));
        Assert.Null(attempts[0].LastError);
        Assert.Contains("cannot parse poison at byte 42", attempts[1].LastError);

        // Back-off: 100 ms +-20% before the 2nd attempt, 200 ms +-20% before the 3rd.
        Assert.True(attempts[1].At - attempts[0].At >= TimeSpan.FromMilliseconds(75), $"{attempts[1].At - attempts[0].At}");
        Assert.True(attempts[2].At - attempts[1].At >= TimeSpan.FromMilliseconds(155), $"{attempts[2].At - attempts[1].At}");
        var dead = Assert.Single(await q.Store.ListDeadAsync("mixed", 10, None));
        Assert.Equal("poison", dead.Key);
        Assert.Equal(3, dead.Attempts);
        Assert.Contains("System.IO.InvalidDataException: cannot parse poison at byte 42", dead.LastError);
        var stats = await q.Store.GetStatsAsync("mixed", None);
        Assert.Equal((0L, 0L, 299L, 1L), (stats.Pending, stats.Running, stats.Done, stats.Dead));
    }

    [Fact]
    public async Task New_work_wakes_an_idle_worker_through_notify_without_polling()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var worker = new WorkQueueWorker("wake", Fast(1), q.Store, (item, ct) =>
        {
            seen.TrySetResult(item.Key);
            return Task.CompletedTask;
        });
        await worker.StartAsync(None);
        await Task.Delay(300);
        await using (var conn = await q.Database.DataSource.OpenConnectionAsync())
        await using (var tx = await conn.BeginTransactionAsync())
        {
            await q.Store.EnqueueAsync(tx, "wake", new WorkItemRequest("late-arrival"), None);
            await Task.Delay(300);
            Assert.False(seen.Task.IsCompleted);
            await tx.CommitAsync();
        }

        // The poll interval is 5 minutes: only the notification can deliver the item within this wait.
        Assert.Equal("late-arrival", await seen.Task.WaitAsync(TimeSpan.FromSeconds(60)));
        await worker.StopAsync(None);
    }

    [Fact]
    public async Task Shutdown_waits_for_in_flight_items_within_the_grace_period_and_returns_the_unfinished()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        await q.Store.EnqueueManyAsync("slow", QueueTestStore.Items(["quick", "stuck", "waiting1", "waiting2", "waiting3"]), None);
        var started = new ConcurrentDictionary<string, bool>();
        var finished = new ConcurrentDictionary<string, bool>();
        var quickMayFinish = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var options = Fast(2, 3);
        options.ShutdownGracePeriod = TimeSpan.FromMilliseconds(700);
        var worker = new WorkQueueWorker("slow", options, q.Store, async (item, ct) =>
        {
            started[item.Key] = true;
            if (item.Key == "quick")
            {
                await quickMayFinish.Task;
            }
            else
            {
                await Task.Delay(Timeout.Infinite, ct);
            }

            finished[item.Key] = true;
        });
        await worker.StartAsync(None);
        await WaitUntilAsync(() => Task.FromResult(started.Count == 2));
        Assert.True(started.ContainsKey("quick") && started.ContainsKey("stuck"), string.Join(",", started.Keys));

        var stop = worker.StopAsync(None);
        await Task.Delay(200);
        quickMayFinish.SetResult();
        await stop;
        await worker.DisposeAsync();

        Assert.Equal(["quick"], finished.Keys);
        Assert.Equal(2, started.Count);
        var stats = await q.Store.GetStatsAsync("slow", None);
        Assert.Equal((4L, 0L, 1L, 0L), (stats.Pending, stats.Running, stats.Done, stats.Failed));

        // Returned items are ready at once and their interrupted attempt does not count.
        var again = (await q.Store.ClaimAsync(new ClaimRequest("slow", "w2", 10, TimeSpan.FromMinutes(1)), None)).Items;
        Assert.Equal(["stuck", "waiting1", "waiting2", "waiting3"], again.Select(i => i.Key).Order());
        Assert.All(again, i => Assert.Equal(1, i.Attempt));
    }

    [Fact]
    public async Task AddWorkQueue_runs_the_handler_from_the_container_and_validates_its_settings()
    {
        await using var q = await QueueTestStore.CreateAsync(db);
        await db.ExecuteAsync($"CREATE TABLE \"{q.Schema}\".handled (key text PRIMARY KEY)");
        await q.Store.EnqueueManyAsync("hosted", QueueTestStore.Items(Enumerable.Range(0, 50).Select(i => $"h{i}")), None);

        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(new HandledTable(q.Database.DataSource, $"\"{q.Schema}\".handled"));
        builder.Services.AddIngestion()
            .UsePostgresQueue(o =>
            {
                o.ConnectionString = db.ConnectionString;
                o.Schema = q.Schema;
            })
            .AddWorkQueue<TableHandler>("hosted", 3, o => o.PollInterval = TimeSpan.FromSeconds(1));
        using (var host = builder.Build())
        {
            await host.StartAsync();
            await WaitUntilAsync(async () => await q.CountAsync("handled") == 50 && (await q.Store.GetStatsAsync("hosted", None)).Done == 50);
            await host.StopAsync();
        }

        var bad = Host.CreateApplicationBuilder();
        bad.Logging.ClearProviders();
        bad.Services.AddIngestion().AddWorkQueue<TableHandler>("no-store", 0);
        using var badHost = bad.Build();
        var e = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => badHost.StartAsync());
        Assert.Contains(e.Failures, f => f.Contains("Ingestion:Queues:no-store:Concurrency", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("no queue store", StringComparison.Ordinal));
        Assert.Throws<InvalidOperationException>(() => new ServiceCollection().AddIngestion().AddWorkQueue<TableHandler>("twice", 1).AddWorkQueue<TableHandler>("twice", 1));
    }

    internal static async Task WaitUntilAsync(Func<Task<bool>> condition, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The condition did not hold within {seconds} s.");
            }

            await Task.Delay(50);
        }
    }

    public sealed record HandledTable(Npgsql.NpgsqlDataSource DataSource, string Table);

    public sealed class TableHandler(HandledTable table) : IWorkItemHandler
    {
        public async Task HandleAsync(WorkItem item, CancellationToken cancellationToken)
        {
            await using var cmd = table.DataSource.CreateCommand($"INSERT INTO {table.Table} (key) VALUES ($1)");
            cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = item.Key });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
    }
}
