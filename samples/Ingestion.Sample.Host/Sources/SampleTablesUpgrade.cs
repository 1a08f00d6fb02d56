using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sql;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Ingestion.Sample.Host.Sources;

/// <summary>
/// Keeps <c>bash scripts/run-sample.sh</c> working on a database made by an older version of the sample (its
/// PostgreSQL lives in <c>.data/pg</c> between runs). The sample's tables are created by the sink from the record
/// schema, and the sink never changes an existing column; so when a built-in record class renamed a column, the old
/// table made every later run fail ("the records have column 'starts_at' which table public.city_events lacks").
/// At start this renames those columns in the sample's own tables, keeping their rows: ICS events had
/// <c>start</c>/<c>end</c> before they became <c>starts_at</c>/<c>ends_at</c> (<c>end</c> is reserved in SQL).
/// Idempotent: a table already up to date, or missing, is left alone.
/// </summary>
public sealed class SampleTablesUpgradeFeature : ISampleFeature
{
    /// <summary>The sample's ICS sources, whose tables may have the old column names.</summary>
    internal static readonly IReadOnlyList<string> CalendarSources = ["city-events", "events-ics"];

    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory) =>
        ingestion.Services.AddHostedService<SampleTablesUpgrade>();
}

/// <summary>Renames the old ICS columns of the sample's calendar tables (see <see cref="SampleTablesUpgradeFeature"/>).</summary>
public sealed partial class SampleTablesUpgrade(IngestionDatabase database, IOptionsMonitor<SourceOptions> sources, ILogger<SampleTablesUpgrade> logger) : IHostedService
{
    private static readonly (string Old, string New)[] CalendarRenames = [("start", "starts_at"), ("end", "ends_at")];

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.DataSource.OpenConnectionAsync(cancellationToken);
        foreach (var source in SampleTablesUpgradeFeature.CalendarSources)
        {
            var options = sources.Get(source);
            var schema = options.Schema ?? database.Options.DefaultTargetSchema;
            var table = options.Table ?? source.Replace('-', '_');
            foreach (var (oldName, newName) in CalendarRenames)
            {
                if (await HasColumnAsync(connection, schema, table, oldName, cancellationToken) && !await HasColumnAsync(connection, schema, table, newName, cancellationToken))
                {
                    // Names are quoted by the library's identifier check (they come from configuration), never built from data.
                    await using var rename = new NpgsqlCommand(
                        $"ALTER TABLE {PgIdentifier.Qualify(schema, table)} RENAME COLUMN {PgIdentifier.Quote(oldName)} TO {PgIdentifier.Quote(newName)}", connection);
                    await rename.ExecuteNonQueryAsync(cancellationToken);
                    LogRenamed(source, schema, table, oldName, newName);
                }
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static async Task<bool> HasColumnAsync(NpgsqlConnection connection, string schema, string table, string column, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 AND column_name = $3)", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = schema });
        command.Parameters.Add(new NpgsqlParameter { Value = table });
        command.Parameters.Add(new NpgsqlParameter { Value = column });
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Sample upgrade: source {Source}'s table {Schema}.{Table} was made by an older sample; column {OldName} renamed to {NewName} (rows kept)")]
    private partial void LogRenamed(string source, string schema, string table, string oldName, string newName);
}
