// A worker process for the multi-process queue tests: drains a queue with a handler that records every
// processing (key, worker, attempt) into a table, prints "ready" once started, and stops on SIGTERM.
// It is killed with SIGKILL by the tests to prove that a dead worker's items are rescued.
// Usage: Ingestion.Queue.TestWorker <connection> <schema> <queue> <results-table> <worker-name> <concurrency> <batch> <lease-ms>
using Ingestion.Hosting;
using Ingestion.Postgres.Queue;
using Ingestion.Queue;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

if (args.Length != 8)
{
    Console.Error.WriteLine("usage: Ingestion.Queue.TestWorker <connection> <schema> <queue> <results-table> <worker-name> <concurrency> <batch> <lease-ms>");
    return 2;
}

var (conn, schema, queue, table, name) = (args[0], args[1], args[2], args[3], args[4]);
var concurrency = int.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture);
var batch = int.Parse(args[6], System.Globalization.CultureInfo.InvariantCulture);
var lease = TimeSpan.FromMilliseconds(int.Parse(args[7], System.Globalization.CultureInfo.InvariantCulture));

var builder = Host.CreateApplicationBuilder();
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(20));
builder.Services.AddIngestion()
    .UsePostgresQueue(o =>
    {
        o.ConnectionString = conn;
        o.Schema = schema;
    })
    .AddWorkQueue<RecordingHandler>(queue, concurrency, o =>
    {
        o.BatchSize = batch;
        o.Lease = lease;
        o.HeartbeatInterval = lease / 5;
        o.RescueInterval = TimeSpan.FromMilliseconds(Math.Max(200, lease.TotalMilliseconds / 4));
        o.PollInterval = TimeSpan.FromSeconds(30);
        o.WorkerId = name;
    });

// The results are test bookkeeping: asynchronous commit is enough (the server does not crash; the worker does).
builder.Services.AddSingleton(new Recorder(NpgsqlDataSource.Create(conn + ";Options=-c synchronous_commit=off"), table, name));
using var host = builder.Build();
await host.StartAsync();
Console.WriteLine("ready");
await host.WaitForShutdownAsync();
return 0;

internal sealed record Recorder(NpgsqlDataSource DataSource, string Table, string Worker);

internal sealed class RecordingHandler(Recorder recorder) : IWorkItemHandler
{
    public async Task HandleAsync(WorkItem item, CancellationToken cancellationToken)
    {
        await using var cmd = recorder.DataSource.CreateCommand($"INSERT INTO {recorder.Table} (key, worker, attempt) VALUES ($1, $2, $3)");
        cmd.Parameters.Add(new NpgsqlParameter { Value = item.Key });
        cmd.Parameters.Add(new NpgsqlParameter { Value = recorder.Worker });
        cmd.Parameters.Add(new NpgsqlParameter { Value = item.Attempt });
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
