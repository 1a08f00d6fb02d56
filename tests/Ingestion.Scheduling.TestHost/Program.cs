// A host process for the multi-host scheduler tests: runs the "probe" source every second from a PostgreSQL-backed
// scheduler, for a given time, then shuts down gracefully (or is killed by the test).
// Args: connection string, ingestion schema, host name, seconds to run, work per run (ms), attempts per slot, claim lease (ms).
using System.Globalization;
using System.Runtime.CompilerServices;
using Ingestion;
using Ingestion.Hosting;
using Ingestion.Postgres.Scheduling;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

var (conn, schema, hostName) = (args[0], args[1], args[2]);
var seconds = int.Parse(args[3], CultureInfo.InvariantCulture);
var workMs = int.Parse(args[4], CultureInfo.InvariantCulture);
var attempts = args[5];
var leaseMs = int.Parse(args[6], CultureInfo.InvariantCulture);

var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning);
builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
{
    ["Ingestion:Postgres:ConnectionString"] = conn,
    ["Ingestion:Postgres:Schema"] = schema,
    ["Ingestion:Scheduling:ClaimLease"] = TimeSpan.FromMilliseconds(leaseMs).ToString("c", CultureInfo.InvariantCulture),
    ["Ingestion:Scheduling:RecoveryInterval"] = "00:00:00.500",
    ["Ingestion:Scheduling:Schedules:tick:Source"] = "probe",
    ["Ingestion:Scheduling:Schedules:tick:Cron"] = "* * * * * *",
    ["Ingestion:Scheduling:Schedules:tick:MisfireThreshold"] = "00:01:00",
    ["Ingestion:Scheduling:Schedules:tick:RetryAttempts"] = attempts,
    ["Ingestion:Scheduling:Schedules:tick:RetryDelay"] = "00:00:00.100",
});
var probes = NpgsqlDataSource.Create(conn);
builder.Services.AddIngestion(builder.Configuration.GetSection("Ingestion"), o => o.HostName = hostName)
    .AddSource("probe", _ => new ProbeSource(probes, hostName, workMs), o =>
    {
        o.MaxRetryAttempts = 0;
        o.Timeout = null;

        // One target table per host, created by the sink, so hosts never race to create the same table.
        o.Table = "probe_" + hostName.Replace('-', '_');
        o.CreateTable = true;
    })
    .UsePostgresScheduling();

using var host = builder.Build();
await host.StartAsync();
Console.WriteLine("ready");
await Task.Delay(TimeSpan.FromSeconds(seconds));
await host.StopAsync();
await probes.DisposeAsync();
return 0;

internal sealed class Probe
{
    [RecordKey]
    public string Id { get; set; } = "";
}

/// <summary>Records the interval of each run in public.sched_probe, working for a while in between.</summary>
internal sealed class ProbeSource(NpgsqlDataSource db, string host, int workMs) : IngestionSource<Probe>
{
    public override async IAsyncEnumerable<Probe> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using (var start = db.CreateCommand("INSERT INTO public.sched_probe (run_id, host, started_at) VALUES ($1, $2, clock_timestamp())"))
        {
            start.Parameters.AddWithValue(context.RunId);
            start.Parameters.AddWithValue(host);
            await start.ExecuteNonQueryAsync(CancellationToken.None);
        }

        await Task.Delay(workMs, cancellationToken);
        await using (var end = db.CreateCommand("UPDATE public.sched_probe SET finished_at = clock_timestamp() WHERE run_id = $1"))
        {
            end.Parameters.AddWithValue(context.RunId);
            await end.ExecuteNonQueryAsync(CancellationToken.None);
        }

        yield return new Probe { Id = context.RunId.ToString() };
    }
}
