using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ingestion.Faults;

/// <summary>A row of the fault source: its value and label follow from its number, so the driver can check every stored row.</summary>
internal sealed class Item
{
    [RecordKey]
    public long Num { get; set; }

    public long Value { get; set; }

    public string Label { get; set; } = "";

    /// <summary>The value of row <paramref name="num"/> in the source's <paramref name="version"/> (the driver checks the same formula in SQL).</summary>
    public static long ValueOf(long num, int version) => (num * 7 % 1000003) + version;
}

/// <summary>Rows 1..N of the given version (each version changes every value), resuming after the committed cursor, a checkpoint every 1,000 rows.</summary>
internal sealed class ItemSource(long rows, int version) : IngestionSource<Item>
{
    public override async IAsyncEnumerable<Item> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var from = long.TryParse(context.State.Cursor, out var c) ? c + 1 : 1;
        for (var n = from; n <= rows; n++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return new Item { Num = n, Value = Item.ValueOf(n, version), Label = $"item {n}" };
            if (n % 1000 == 0 || n == rows)
            {
                context.Checkpoint(new SourceCheckpoint(n.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }

            if (n % 20_000 == 0)
            {
                await Task.Yield();
            }
        }
    }
}

/// <summary>One host process: runs the fault source once and exits 0 (success), 3 (another host held the lock) or 1.</summary>
internal static class FaultHost
{
    public static async Task<int> RunAsync(string connectionString, long rows, string hostName, int keepAliveMs, int? keyIndexMaxRows)
    {
        var version = int.TryParse(Environment.GetEnvironmentVariable("INGESTION_FAULTS_VERSION"), out var v) ? v : 0;
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Information);
        builder.Services.AddIngestion(configure: o => { o.HostName = hostName; o.HeartbeatInterval = TimeSpan.FromMilliseconds(500); })
            .UsePostgres(o =>
            {
                o.ConnectionString = connectionString;
                o.RunLockKeepAliveInterval = TimeSpan.FromMilliseconds(keepAliveMs);
            })
            .ConfigurePostgresSink(o => o.KeyIndexMaxRows = keyIndexMaxRows ?? o.KeyIndexMaxRows)
            .AddSource("faults", _ => new ItemSource(rows, version), o =>
            {
                o.Table = "fault_items";
                o.CreateTable = true;
                o.BatchSize = 5000;
                o.MaxRetryAttempts = 8;
                o.RetryDelay = TimeSpan.FromMilliseconds(300);
                o.Timeout = null;
            });
        using var host = builder.Build();
        try
        {
            await host.StartAsync();
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or InvalidOperationException)
        {
            Console.WriteLine($"result: start failed: {e.Message}");
            return 1;
        }

        var mode = Environment.GetEnvironmentVariable("INGESTION_FAULTS_FULL_REFRESH") == "1" ? IngestionMode.FullRefresh : IngestionMode.Incremental;
        var result = await host.Services.GetRequiredService<IIngestionRunner>().RunAsync("faults", new RunRequest { Trigger = "faults", Mode = mode }, CancellationToken.None);
        Console.WriteLine($"result: {result}");
        await host.StopAsync();
        return result.Status switch
        {
            IngestionStatus.Succeeded or IngestionStatus.NotModified => 0,
            IngestionStatus.AlreadyRunning => 3,
            _ => 1,
        };
    }
}
