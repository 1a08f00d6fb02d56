using System.Globalization;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Migrations;
using Ingestion.Postgres.Sql;
using Ingestion.Sinks;
using Ingestion.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Ingestion.Postgres.Sync;

/// <summary>Sets up deletion detection on full refresh for PostgreSQL target tables.</summary>
public static class DeletionDetectionExtensions
{
    /// <summary>The migration of the <c>sync</c> component: the unlogged table of keys seen by running full refreshes.</summary>
    public static PostgresMigration Migration { get; } = new("sync", 1, "sync_seen_keys for full-refresh deletion detection", """
        CREATE UNLOGGED TABLE {schema}.sync_seen_keys (
            source text NOT NULL,
            run_id uuid NOT NULL,
            key text NOT NULL);
        CREATE INDEX sync_seen_keys_run ON {schema}.sync_seen_keys (run_id, key);
        CREATE INDEX sync_seen_keys_source ON {schema}.sync_seen_keys (source);
        """);

    /// <summary>
    /// On a full refresh of the source (write mode Merge), rows of its target table that the source no longer
    /// returns are soft-deleted (their <c>deleted_at</c> set; cleared if they come back) or deleted, and counted
    /// in <see cref="IngestionCounts.Deleted"/>. A refresh below the floor (<see cref="DeletionOptions.MinFraction"/>
    /// of the rows present, <see cref="DeletionOptions.MinRows"/>) deletes nothing and fails. A refresh interrupted
    /// before its end deletes nothing; the next one completes the work. Settings bind from
    /// <c>Ingestion:Sources:&lt;name&gt;:Sync:Deletion</c> and are validated at start. Requires <c>UsePostgres()</c>.
    /// </summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="sourceName">The source.</param>
    /// <param name="configure">Adjusts the settings after binding.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddDeletionDetection(this IIngestionBuilder builder, string sourceName, Action<DeletionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(sourceName);
        builder.UsePostgres();
        builder.Services.AddPostgresMigration(Migration);
        var options = builder.Services.AddOptions<DeletionOptions>(sourceName);
        if (builder.Configuration is { } config)
        {
            foreach (var section in SourceConfiguration.Sections(config, sourceName, "Sync:Deletion"))
            {
                options.Bind(section);
            }
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        builder.Services.AddSingleton(new DeletionDetectionRegistration(sourceName));
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ISinkHook, DeletionDetectionHook>());
        builder.Catalog().AddStartupCheck(sp =>
        {
            var o = sp.GetRequiredService<IOptionsMonitor<DeletionOptions>>().Get(sourceName);
            var problems = o.Validate($"Ingestion:Sources:{sourceName}:Sync:Deletion").ToList();
            if (sp.GetRequiredService<SourceCatalog>().Find(sourceName) is null)
            {
                problems.Add($"Deletion detection names source '{sourceName}', which is not registered.");
            }

            return problems;
        });
        return builder;
    }
}

/// <summary>Marks a source as under deletion detection.</summary>
/// <param name="SourceName">The source.</param>
public sealed record DeletionDetectionRegistration(string SourceName);

/// <summary>The sink hook that records the keys a full refresh returns and applies the deletions at its end.</summary>
internal sealed class DeletionDetectionHook(IEnumerable<DeletionDetectionRegistration> registrations, IOptionsMonitor<DeletionOptions> options, IngestionDatabase database, TimeProvider time) : ISinkHook
{
    public async ValueTask<ISinkHookRun<TRecord>?> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
        where TRecord : class
    {
        if (run.Mode != IngestionMode.FullRefresh || !registrations.Any(r => r.SourceName == run.SourceName))
        {
            return null;
        }

        var o = options.Get(run.SourceName);
        if (o.Mode == DeletionMode.None || run.Options.WriteMode != WriteMode.Merge)
        {
            return null;
        }

        await database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var schema = PgIdentifier.Quote(database.Schema, "Ingestion:Postgres:Schema");

        // Keys left by an earlier refresh of this source that never completed are of no use: its successor reads everything again.
        var clean = database.DataSource.CreateCommand($"DELETE FROM {schema}.sync_seen_keys WHERE source = $1");
        await using (clean.ConfigureAwait(false))
        {
            clean.Parameters.AddWithValue(run.SourceName);
            await clean.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        return new Run<TRecord>(run, o, database, schema, time);
    }

    private sealed class Run<TRecord>(SinkRun run, DeletionOptions options, IngestionDatabase database, string schema, TimeProvider time) : ISinkHookRun<TRecord>
        where TRecord : class
    {
        private readonly RecordValues<TRecord> _values = new(run.Schema);
        private RecordSchema? _schema = run.Schema;

        public async ValueTask<SinkBatchResult> AfterBatchAsync(SinkBatch<TRecord> batch, SinkBatchResult written, CancellationToken cancellationToken)
        {
            var keys = new List<string>(batch.Records.Count);
            foreach (var record in batch.Records)
            {
                _schema ??= _values.SchemaOf(record);
                if (Key(record) is { } key)
                {
                    keys.Add(key);
                }
            }

            if (keys.Count == 0)
            {
                return written;
            }

            var conn = await database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (conn.ConfigureAwait(false))
            {
                var importer = await conn.BeginBinaryImportAsync($"COPY {schema}.sync_seen_keys (source, run_id, key) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false);
                await using (importer.ConfigureAwait(false))
                {
                    foreach (var key in keys)
                    {
                        await importer.StartRowAsync(cancellationToken).ConfigureAwait(false);
                        await importer.WriteAsync(run.SourceName, NpgsqlTypes.NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                        await importer.WriteAsync(run.RunId, NpgsqlTypes.NpgsqlDbType.Uuid, cancellationToken).ConfigureAwait(false);
                        await importer.WriteAsync(key, NpgsqlTypes.NpgsqlDbType.Text, cancellationToken).ConfigureAwait(false);
                    }

                    await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
                }
            }

            return written;
        }

        public async ValueTask<SinkCompletion> AfterCompleteAsync(SinkCompletion completion, CancellationToken cancellationToken)
        {
            if (_schema is null)
            {
                // Nothing was read: the floor decides (a table with rows fails, an empty one has nothing to delete).
                _schema = run.Schema;
            }

            var source = run.SourceName;
            var tableSchema = run.Options.Schema ?? database.Options.DefaultTargetSchema;
            var tableName = run.Options.Table ?? DefaultTableName(source);
            var target = PgIdentifier.Quote(tableSchema, $"Ingestion:Sources:{source}:Schema") + "." + PgIdentifier.Quote(tableName, $"Ingestion:Sources:{source}:Table");
            var keyColumns = KeyColumns();
            var keyExpr = keyColumns.Count == 0 ? "NULL" : $"concat_ws(chr(31), {string.Join(", ", keyColumns.Select(c => $"t.{PgIdentifier.Quote(c, $"key column of {source}")}::text"))})";
            var scope = _schema?.HasSourceNameColumn == true ? $"t.{PgIdentifier.Quote(RecordSchema.SourceColumnName)} = $2" : "$2::text IS NOT NULL";
            var deletedAt = PgIdentifier.Quote(options.DeletedAtColumn, $"Ingestion:Sources:{source}:Sync:Deletion:DeletedAtColumn");
            var soft = options.Mode == DeletionMode.SoftDelete;
            var seen = $"EXISTS (SELECT 1 FROM {schema}.sync_seen_keys s WHERE s.run_id = $1 AND s.key = {keyExpr})";

            var conn = await database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (conn.ConfigureAwait(false))
            {
                var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (tx.ConfigureAwait(false))
                {
                    if (soft)
                    {
                        await ExecAsync(conn, tx, $"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {deletedAt} timestamptz", cancellationToken).ConfigureAwait(false);
                    }

                    var returned = await ScalarAsync(conn, tx, $"SELECT count(DISTINCT key) FROM {schema}.sync_seen_keys WHERE run_id = $1 AND $2::text IS NOT NULL", cancellationToken).ConfigureAwait(false);
                    var present = await ScalarAsync(conn, tx, $"SELECT count(*) FROM {target} t WHERE {scope}{(soft ? $" AND t.{deletedAt} IS NULL" : string.Empty)} AND $1::uuid IS NOT NULL", cancellationToken).ConfigureAwait(false);
                    try
                    {
                        DeletionFloor.Check(source, returned, present, options);
                    }
                    catch (DeletionFloorException)
                    {
                        await tx.RollbackAsync(cancellationToken).ConfigureAwait(false);
                        await ExecAsync(conn, null, $"DELETE FROM {schema}.sync_seen_keys WHERE run_id = $1", CancellationToken.None, run.RunId).ConfigureAwait(false);
                        throw;
                    }

                    long deleted;
                    if (soft)
                    {
                        var now = time.GetUtcNow();
                        deleted = await ExecAsync(conn, tx, $"UPDATE {target} t SET {deletedAt} = $3 WHERE {scope} AND t.{deletedAt} IS NULL AND NOT {seen}", cancellationToken, run.RunId, source, now).ConfigureAwait(false);
                        await ExecAsync(conn, tx, $"UPDATE {target} t SET {deletedAt} = NULL WHERE {scope} AND t.{deletedAt} IS NOT NULL AND {seen}", cancellationToken, run.RunId, source).ConfigureAwait(false);
                    }
                    else
                    {
                        deleted = await ExecAsync(conn, tx, $"DELETE FROM {target} t WHERE {scope} AND NOT {seen}", cancellationToken, run.RunId, source).ConfigureAwait(false);
                    }

                    await ExecAsync(conn, tx, $"DELETE FROM {schema}.sync_seen_keys WHERE run_id = $1", cancellationToken, run.RunId).ConfigureAwait(false);
                    if (run.IsDryRun)
                    {
                        await tx.RollbackAsync(cancellationToken).ConfigureAwait(false);
                        await ExecAsync(conn, null, $"DELETE FROM {schema}.sync_seen_keys WHERE run_id = $1", cancellationToken, run.RunId).ConfigureAwait(false);
                    }
                    else
                    {
                        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                    }

                    return completion with { Deleted = completion.Deleted + deleted };
                }
            }

            async Task<long> ScalarAsync(NpgsqlConnection c, NpgsqlTransaction t, string sql, CancellationToken ct)
            {
                var cmd = new NpgsqlCommand(sql, c, t);
                await using (cmd.ConfigureAwait(false))
                {
                    cmd.Parameters.AddWithValue(run.RunId);
                    cmd.Parameters.AddWithValue(source);
                    return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct).ConfigureAwait(false), CultureInfo.InvariantCulture);
                }
            }
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private static async Task<long> ExecAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, CancellationToken cancellationToken, params object[] args)
        {
            var cmd = new NpgsqlCommand(sql, conn, tx);
            await using (cmd.ConfigureAwait(false))
            {
                foreach (var a in args)
                {
                    cmd.Parameters.AddWithValue(a);
                }

                return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        private static string DefaultTableName(string sourceName) =>
            RecordSchema.ToSnakeCase(sourceName).Replace('-', '_').Replace('.', '_');

        private List<string> KeyColumns()
        {
            if (run.Options.KeyColumns.Count > 0)
            {
                return [.. run.Options.KeyColumns];
            }

            return _schema?.KeyColumns.Where(k => !k.IsSourceName).Select(k => k.Name).ToList() ?? [];
        }

        private string? Key(TRecord record)
        {
            var schema = _values.SchemaOf(record);
            var parts = new List<string>();
            IEnumerable<ColumnSchema> columns = run.Options.KeyColumns.Count > 0
                ? run.Options.KeyColumns.Select(n => schema.TryGetColumn(n, out var c) ? c : throw new IngestionException($"Source '{run.SourceName}': key column '{n}' is not a column of the record.") { SourceName = run.SourceName, Field = n })
                : schema.KeyColumns.Where(k => !k.IsSourceName);
            foreach (var column in columns)
            {
                var value = _values.Get(record, column, run.SourceName);
                switch (value)
                {
                    case null:
                        return null;
                    case string or int or long or short or Guid:
                        parts.Add(Convert.ToString(value, CultureInfo.InvariantCulture)!);
                        break;
                    case DateOnly d:
                        parts.Add(d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
                        break;
                    default:
                        throw new IngestionException($"Source '{run.SourceName}': deletion detection compares keys as text, and key column '{column.Name}' is a {value.GetType().Name}; use text, integer, uuid or date keys.") { SourceName = run.SourceName, Field = column.Name };
                }
            }

            return string.Join('\u001f', parts);
        }
    }
}
