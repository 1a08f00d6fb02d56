using System.Text;
using System.Text.Json;
using Ingestion.Postgres.Migrations;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Stores;

/// <summary>The SQL of the job, state and rejected-record stores, shared with the sink (which saves state and rejects in its batch transactions).</summary>
internal static class StoreSql
{
    /// <summary>The migrations of the stores' tables.</summary>
    public static IReadOnlyList<IPostgresMigration> Migrations { get; } =
    [
        new PostgresMigration("stores", 1, "import_jobs, source_state, rejected_records", """
            CREATE TABLE IF NOT EXISTS {schema}.import_jobs (
                id uuid PRIMARY KEY,
                source text NOT NULL,
                trigger text NOT NULL,
                mode text NOT NULL,
                dry_run boolean NOT NULL DEFAULT false,
                status text NOT NULL DEFAULT 'Running',
                host text NOT NULL,
                started_at timestamptz NOT NULL,
                finished_at timestamptz,
                read bigint NOT NULL DEFAULT 0,
                created bigint NOT NULL DEFAULT 0,
                updated bigint NOT NULL DEFAULT 0,
                unchanged bigint NOT NULL DEFAULT 0,
                duplicates bigint NOT NULL DEFAULT 0,
                rejected bigint NOT NULL DEFAULT 0,
                deleted bigint NOT NULL DEFAULT 0,
                error text);
            CREATE INDEX IF NOT EXISTS import_jobs_source_started_idx ON {schema}.import_jobs (source, started_at DESC);
            CREATE INDEX IF NOT EXISTS import_jobs_started_idx ON {schema}.import_jobs (started_at DESC);
            CREATE TABLE IF NOT EXISTS {schema}.source_state (
                source text PRIMARY KEY,
                cursor text,
                etag text,
                last_modified timestamptz,
                content_hash text,
                "values" jsonb NOT NULL DEFAULT '{}',
                last_checked timestamptz,
                last_imported timestamptz,
                last_success timestamptz,
                updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE IF NOT EXISTS {schema}.rejected_records (
                id bigserial PRIMARY KEY,
                job_id uuid NOT NULL,
                source text NOT NULL,
                position text NOT NULL,
                field text,
                reason text NOT NULL,
                raw_value text,
                created_at timestamptz NOT NULL DEFAULT now());
            CREATE INDEX IF NOT EXISTS rejected_records_job_idx ON {schema}.rejected_records (job_id);
            """),
        new PostgresMigration("stores", 2, "import_jobs: duplicates linked and candidates for review", """
            ALTER TABLE {schema}.import_jobs ADD COLUMN IF NOT EXISTS linked bigint NOT NULL DEFAULT 0;
            ALTER TABLE {schema}.import_jobs ADD COLUMN IF NOT EXISTS for_review bigint NOT NULL DEFAULT 0;
            """),
        new PostgresMigration("stores", 3, "run_locks (fencing tokens); import_jobs: heartbeat and requester", """
            CREATE TABLE IF NOT EXISTS {schema}.run_locks (
                source text PRIMARY KEY,
                generation bigint NOT NULL,
                run_id uuid NOT NULL,
                host text NOT NULL,
                acquired_at timestamptz NOT NULL);
            ALTER TABLE {schema}.import_jobs ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz;
            ALTER TABLE {schema}.import_jobs ADD COLUMN IF NOT EXISTS requested_by text;
            CREATE INDEX IF NOT EXISTS import_jobs_running_idx ON {schema}.import_jobs (source) WHERE status = 'Running';
            """),
    ];

    public static async Task SaveStateAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string schema, string source, SourceState state, CancellationToken cancellationToken)
    {
        var batch = new NpgsqlBatch(conn, tx) { BatchCommands = { SaveStateCommand(schema, source, state) } };
        await using (batch.ConfigureAwait(false))
        {
            await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The statement that saves a source's checkpoint, for a batch of statements sent in one round trip (a sink writer
    /// sends it with the batch's fencing check).
    /// </summary>
    public static NpgsqlBatchCommand SaveStateCommand(string schema, string source, SourceState state)
    {
        var cmd = new NpgsqlBatchCommand(
            $"""
            INSERT INTO {schema}.source_state AS s (source, cursor, etag, last_modified, content_hash, "values", last_checked, last_imported, last_success, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
            ON CONFLICT (source) DO UPDATE SET cursor = EXCLUDED.cursor, etag = EXCLUDED.etag, last_modified = EXCLUDED.last_modified,
                content_hash = EXCLUDED.content_hash, "values" = EXCLUDED."values", last_checked = EXCLUDED.last_checked,
                last_imported = EXCLUDED.last_imported, last_success = EXCLUDED.last_success, updated_at = now()
            """);
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = source, NpgsqlDbType = NpgsqlDbType.Text });
        cmd.Parameters.Add(Text(state.Cursor));
        cmd.Parameters.Add(Text(state.ETag));
        cmd.Parameters.Add(Time(state.LastModified));
        cmd.Parameters.Add(Text(state.ContentHash));
        cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = JsonSerializer.Serialize(state.Values), NpgsqlDbType = NpgsqlDbType.Jsonb });
        cmd.Parameters.Add(Time(state.LastChecked));
        cmd.Parameters.Add(Time(state.LastImported));
        cmd.Parameters.Add(Time(state.LastSuccess));
        return cmd;
    }

    public static async Task<SourceState> GetStateAsync(NpgsqlConnection conn, string schema, string source, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand($"SELECT cursor, etag, last_modified, content_hash, \"values\"::text, last_checked, last_imported, last_success FROM {schema}.source_state WHERE source = $1", conn);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = source, NpgsqlDbType = NpgsqlDbType.Text });
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return SourceState.Empty;
                }

                DateTimeOffset? T(int i) => reader.IsDBNull(i) ? null : new DateTimeOffset(reader.GetFieldValue<DateTime>(i), TimeSpan.Zero);
                string? S(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
                return new SourceState
                {
                    Cursor = S(0),
                    ETag = S(1),
                    LastModified = T(2),
                    ContentHash = S(3),
                    Values = JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(4)) ?? [],
                    LastChecked = T(5),
                    LastImported = T(6),
                    LastSuccess = T(7),
                };
            }
        }
    }

    public static async Task InsertRejectedAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string schema, Guid jobId, string source, IReadOnlyList<RejectedRecord> rejected, int maxValueLength, CancellationToken cancellationToken)
    {
        if (rejected.Count == 0)
        {
            return;
        }

        var cmd = new NpgsqlCommand(
            $"""
            INSERT INTO {schema}.rejected_records (job_id, source, position, field, reason, raw_value)
            SELECT $1, $2, x.p, x.f, x.r, x.v FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS x(p, f, r, v)
            """,
            conn,
            tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = jobId, NpgsqlDbType = NpgsqlDbType.Uuid });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = source, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = rejected.Select(r => Clean(r.Position, 200) ?? "?").ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = rejected.Select(r => Clean(r.Field, 200)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = rejected.Select(r => Clean(r.Reason, 2000) ?? "?").ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = rejected.Select(r => Clean(r.RawValue, maxValueLength)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Makes text storable: NUL characters (which PostgreSQL text cannot hold) are shown as <c>\0</c>, unpaired surrogates (which UTF-8 cannot encode) as U+FFFD, and long text is truncated with a marker.</summary>
    public static string? Clean(string? text, int maxLength)
    {
        if (text is null)
        {
            return null;
        }

        if (text.Contains('\0', StringComparison.Ordinal))
        {
            text = text.Replace("\0", "\\0", StringComparison.Ordinal);
        }

        if (Sinks.ValueCodec.UnpairedSurrogate(text) is not null)
        {
            // An unpaired surrogate cannot be encoded as UTF-8: shown as U+FFFD, as a lenient decoder would.
            var chars = text.ToCharArray();
            for (var i = 0; i < chars.Length; i++)
            {
                if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
                {
                    i++;
                }
                else if (char.IsSurrogate(chars[i]))
                {
                    chars[i] = '\ufffd';
                }
            }

            text = new string(chars);
        }

        if (text.Length > maxLength)
        {
            var cut = maxLength;
            if (char.IsHighSurrogate(text[cut - 1]))
            {
                cut--;
            }

            text = new StringBuilder(text, 0, cut, cut + 32).Append("... (").Append(text.Length).Append(" chars)").ToString();
        }

        return text;
    }

    private static NpgsqlParameter Text(string? value) =>
        new() { Value = (object?)value ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text };

    private static NpgsqlParameter Time(DateTimeOffset? value) =>
        new() { Value = value is { } v ? v.UtcDateTime : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz };
}
