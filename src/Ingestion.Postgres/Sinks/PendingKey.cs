using System.Text.Json;
using Ingestion.Postgres.Sql;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// The primary key a table made by the sink is still waiting for (a first load fills it before the key is built), as
/// written in the comment on its hash column: the key's columns, and whether the table may hold a key more than once
/// because a first load copied keys it could no longer remember (past <see cref="PostgresSinkOptions.KeyIndexMaxRows"/>).
/// </summary>
/// <param name="Columns">The key columns.</param>
/// <param name="MayHoldRepeats">Whether rows were copied under keys the writer did not remember; the newest row of a
/// repeated key then wins when the key is built (see <see cref="ResolveRepeatsAsync"/>).</param>
internal sealed record PendingKey(IReadOnlyList<string> Columns, bool MayHoldRepeats)
{
    private const string Prefix = "ingestion key: ";
    private const string RepeatsSuffix = " (may hold repeats)";

    /// <summary>The comment text.</summary>
    public string Comment => Prefix + JsonSerializer.Serialize(Columns) + (MayHoldRepeats ? RepeatsSuffix : string.Empty);

    /// <summary>Reads a comment written by <see cref="Comment"/>; <see langword="null"/> for any other text.</summary>
    /// <param name="comment">The comment.</param>
    /// <returns>The pending key, or <see langword="null"/>.</returns>
    public static PendingKey? Parse(string? comment)
    {
        if (comment is null || !comment.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var repeats = comment.EndsWith(RepeatsSuffix, StringComparison.Ordinal);
        var json = comment[Prefix.Length..(repeats ? comment.Length - RepeatsSuffix.Length : comment.Length)];
        return JsonSerializer.Deserialize<string[]>(json) is { Length: > 0 } columns ? new PendingKey(columns, repeats) : null;
    }

    /// <summary>
    /// The key a table made by the sink without its primary key is waiting for, or <see langword="null"/> when the
    /// table is missing, has a primary key, or is not such a table.
    /// </summary>
    public static async Task<PendingKey?> ReadAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string target, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand(
            $"""
            SELECT col_description(a.attrelid, a.attnum) FROM pg_attribute a
            WHERE a.attrelid = to_regclass($1) AND a.attname = '{TableMapping<object>.HashColumn}' AND NOT a.attisdropped
              AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary)
            """,
            conn,
            tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = target, NpgsqlDbType = NpgsqlDbType.Text });
            return Parse(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string);
        }
    }

    /// <summary>The statement that builds the primary key on <paramref name="target"/>.</summary>
    /// <param name="target">The quoted table.</param>
    /// <param name="fillFactor">The fill factor of the key's index (<see cref="PostgresSinkOptions.CreatedTableFillFactor"/>).</param>
    /// <returns>The statement.</returns>
    public string AddPrimaryKey(string target, int fillFactor) =>
        $"ALTER TABLE {target} ADD PRIMARY KEY ({string.Join(", ", Columns.Select(c => PgIdentifier.Quote(c)))}) WITH (fillfactor = {fillFactor.ToString(System.Globalization.CultureInfo.InvariantCulture)})";

    /// <summary>The statement that writes this pending key on <paramref name="target"/>'s hash column.</summary>
    /// <param name="target">The quoted table.</param>
    /// <returns>The statement.</returns>
    public string CommentOn(string target) =>
        $"COMMENT ON COLUMN {target}.{PgIdentifier.Quote(TableMapping<object>.HashColumn)} IS '{Comment.Replace("'", "''", StringComparison.Ordinal)}'";

    /// <summary>
    /// Keeps one row per key in a table filled without its key whose first load copied keys it no longer remembered:
    /// the newest (the row of the latest transaction, as batches commit one after another), deleting the older ones.
    /// Each deleted row was counted created by its batch; the newer row is really an update of it, or unchanged when
    /// both have the same row hash.
    /// </summary>
    /// <returns>How many rows counted created were updates and how many were unchanged.</returns>
    public async Task<(long Updated, long Unchanged)> ResolveRepeatsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string target, CancellationToken cancellationToken)
    {
        var keys = string.Join(", ", Columns.Select(c => PgIdentifier.Quote(c)));
        var hash = PgIdentifier.Quote(TableMapping<object>.HashColumn);

        // age(xmin) is smaller for newer transactions (frozen rows count as the oldest); ctid breaks no real tie, as a
        // batch holds a key once.
        var sql = $"""
            WITH ranked AS (
              SELECT ctid AS row_id, {hash} AS h,
                     lag({hash}) OVER w AS previous_h,
                     row_number() OVER w AS n,
                     count(*) OVER (PARTITION BY {keys}) AS versions
              FROM {target}
              WHERE ({keys}) IN (SELECT {keys} FROM {target} GROUP BY {keys} HAVING count(*) > 1)
              WINDOW w AS (PARTITION BY {keys} ORDER BY age(xmin) DESC, ctid)
            ), gone AS (
              DELETE FROM {target} t USING ranked r WHERE t.ctid = r.row_id AND r.n < r.versions RETURNING 1
            )
            SELECT count(*) FILTER (WHERE n > 1 AND h IS DISTINCT FROM previous_h),
                   count(*) FILTER (WHERE n > 1 AND h IS NOT DISTINCT FROM previous_h),
                   (SELECT count(*) FROM gone)
            FROM ranked
            """;
        var cmd = new NpgsqlCommand(sql, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                return (reader.GetInt64(0), reader.GetInt64(1));
            }
        }
    }
}
