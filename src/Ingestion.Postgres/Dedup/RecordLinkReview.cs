using System.Text.Json;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sql;
using Npgsql;

namespace Ingestion.Postgres.Dedup;

/// <summary>A record under dedup, named by its source and its identifier there.</summary>
/// <param name="Source">The source name.</param>
/// <param name="SourceId">The identifier in the source.</param>
public readonly record struct SourceRecordRef(string Source, string SourceId)
{
    /// <inheritdoc />
    public override string ToString() => $"{Source}:{SourceId}";
}

/// <summary>A row of <c>record_links</c>: a record, the record it matched, the score with its explanation, and the review status.</summary>
/// <param name="RecordType">The record type.</param>
/// <param name="Record">The record that was matched.</param>
/// <param name="Target">The record it matched.</param>
/// <param name="Score">The score, 0 to 1.</param>
/// <param name="Reason">The explanation of the score, field by field.</param>
/// <param name="Status"><c>linked</c>, <c>review</c>, <c>confirmed</c>, <c>rejected</c> or <c>reported</c>.</param>
/// <param name="ReviewedBy">Who confirmed or rejected it.</param>
/// <param name="ReviewedAt">When.</param>
public sealed record RecordLink(string RecordType, SourceRecordRef Record, SourceRecordRef Target, double Score, string Reason, string Status, string? ReviewedBy, DateTimeOffset? ReviewedAt);

/// <summary>A canonical record with all its source aliases.</summary>
/// <param name="RecordType">The record type.</param>
/// <param name="Canonical">The record that represents the group.</param>
/// <param name="Aliases">Every member of the group (the canonical one included), as <c>source:source_id</c>.</param>
/// <param name="Profile">The canonical record's field values by field name (encoded as text).</param>
/// <param name="Merged">The merged field values by field name, under the merge policy; otherwise <see langword="null"/>.</param>
/// <param name="MergeConflicts">The merge conflicts as JSON, under the merge policy; otherwise <see langword="null"/>.</param>
public sealed record CanonicalRecord(string RecordType, SourceRecordRef Canonical, IReadOnlyList<string> Aliases, IReadOnlyList<string?> Profile, IReadOnlyDictionary<string, string?>? Merged, string? MergeConflicts);

/// <summary>
/// Reviews the links of cross-source dedup: lists links and candidates, confirms a pair (linking it when it
/// was only a candidate), rejects a pair (unlinking it; a rejected pair never links again), and shows the
/// canonical record of any record with all its aliases.
/// </summary>
public sealed class RecordLinkReview
{
    private readonly IngestionDatabase _database;
    private readonly PostgresDedupStore _store;
    private readonly string _schema;

    /// <summary>Creates the review service.</summary>
    /// <param name="database">The library's database.</param>
    /// <param name="store">The dedup store.</param>
    public RecordLinkReview(IngestionDatabase database, PostgresDedupStore store)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(store);
        _database = database;
        _store = store;
        _schema = PgIdentifier.Quote(database.Schema, "Ingestion:Postgres:Schema");
    }

    /// <summary>Lists links of a record type, best score first.</summary>
    /// <param name="recordType">The record type.</param>
    /// <param name="status">Only this status (e.g. <c>review</c>), or <see langword="null"/> for all.</param>
    /// <param name="limit">The most rows.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The links.</returns>
    public async Task<IReadOnlyList<RecordLink>> ListAsync(string recordType, string? status, int limit, CancellationToken cancellationToken)
    {
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _database.DataSource.CreateCommand($"""
            SELECT l.record_type, a.source, a.source_id, b.source, b.source_id, l.score, l.reason, l.status, l.reviewed_by, l.reviewed_at
            FROM {_schema}.record_links l
            JOIN {_schema}.dedup_records a ON a.id = l.record_id
            JOIN {_schema}.dedup_records b ON b.id = l.target_id
            WHERE l.record_type = $1 AND ($2::text IS NULL OR l.status = $2)
            ORDER BY l.score DESC, a.source, a.source_id
            LIMIT $3
            """);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(recordType);
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)status ?? DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Text });
            cmd.Parameters.AddWithValue(limit);
            var list = new List<RecordLink>();
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    list.Add(new RecordLink(
                        reader.GetString(0),
                        new SourceRecordRef(reader.GetString(1), reader.GetString(2)),
                        new SourceRecordRef(reader.GetString(3), reader.GetString(4)),
                        reader.GetFloat(5),
                        reader.GetString(6),
                        reader.GetString(7),
                        reader.IsDBNull(8) ? null : reader.GetString(8),
                        reader.IsDBNull(9) ? null : reader.GetFieldValue<DateTimeOffset>(9)));
                }
            }

            return list;
        }
    }

    /// <summary>Confirms that two records are the same: the pair's link (or review candidate) becomes <c>confirmed</c> and the records share a canonical record.</summary>
    /// <param name="recordType">The record type.</param>
    /// <param name="record">One record.</param>
    /// <param name="target">The other.</param>
    /// <param name="reviewer">Who confirms (recorded).</param>
    /// <param name="cancellationToken">Cancels the change.</param>
    /// <returns>A task.</returns>
    /// <exception cref="InvalidOperationException">A record is unknown, or the pair was rejected.</exception>
    public Task ConfirmAsync(string recordType, SourceRecordRef record, SourceRecordRef target, string reviewer, CancellationToken cancellationToken) =>
        ReviewAsync(recordType, record, target, reviewer, confirm: true, cancellationToken);

    /// <summary>Rejects a pair: the link becomes <c>rejected</c> (created if the pair had none), the records no longer share a canonical record, and the pair never links again.</summary>
    /// <param name="recordType">The record type.</param>
    /// <param name="record">One record.</param>
    /// <param name="target">The other.</param>
    /// <param name="reviewer">Who rejects (recorded).</param>
    /// <param name="cancellationToken">Cancels the change.</param>
    /// <returns>A task.</returns>
    /// <exception cref="InvalidOperationException">A record is unknown.</exception>
    public Task RejectAsync(string recordType, SourceRecordRef record, SourceRecordRef target, string reviewer, CancellationToken cancellationToken) =>
        ReviewAsync(recordType, record, target, reviewer, confirm: false, cancellationToken);

    /// <summary>The canonical record of a record, with all its aliases.</summary>
    /// <param name="recordType">The record type.</param>
    /// <param name="record">Any member of the group.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The canonical record, or <see langword="null"/> when the record is not under dedup.</returns>
    public async Task<CanonicalRecord?> GetCanonicalAsync(string recordType, SourceRecordRef record, CancellationToken cancellationToken)
    {
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _database.DataSource.CreateCommand($"""
            SELECT v.canonical_source, v.canonical_source_id, v.aliases, v.profile::text, m.record::text, m.conflicts::text
            FROM {_schema}.dedup_records r
            JOIN {_schema}.dedup_canonical v ON v.canonical_id = r.canonical_id
            LEFT JOIN {_schema}.dedup_merged m ON m.record_type = r.record_type AND m.canonical_id = r.canonical_id
            WHERE r.record_type = $1 AND r.source = $2 AND r.source_id = $3
            """);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(recordType);
            cmd.Parameters.AddWithValue(record.Source);
            cmd.Parameters.AddWithValue(record.SourceId);
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    return null;
                }

                return new CanonicalRecord(
                    recordType,
                    new SourceRecordRef(reader.GetString(0), reader.GetString(1)),
                    reader.GetFieldValue<string[]>(2),
                    JsonSerializer.Deserialize<string?[]>(reader.GetString(3)) ?? [],
                    reader.IsDBNull(4) ? null : JsonSerializer.Deserialize<Dictionary<string, string?>>(reader.GetString(4)),
                    reader.IsDBNull(5) ? null : reader.GetString(5));
            }
        }
    }

    private async Task ReviewAsync(string recordType, SourceRecordRef record, SourceRecordRef target, string reviewer, bool confirm, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reviewer);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                var a = await FindAsync(conn, tx, recordType, record, cancellationToken).ConfigureAwait(false);
                var b = await FindAsync(conn, tx, recordType, target, cancellationToken).ConfigureAwait(false);

                // The pair is stored once, in whichever direction it was found.
                var (recordId, targetId, status) = await PairAsync(conn, tx, a.Id, b.Id, cancellationToken).ConfigureAwait(false)
                    ?? (a.Id, b.Id, (string?)null);
                if (confirm && status == "rejected")
                {
                    throw new InvalidOperationException($"The pair {record} / {target} of '{recordType}' was rejected; a rejected pair never links again.");
                }

                var upsert = new NpgsqlCommand($"""
                    INSERT INTO {_schema}.record_links (record_type, record_id, target_id, score, reason, status, reviewed_at, reviewed_by)
                    VALUES ($1, $2, $3, 0, 'set by a reviewer', $4, now(), $5)
                    ON CONFLICT (record_id, target_id) DO UPDATE SET status = EXCLUDED.status, reviewed_at = now(), reviewed_by = EXCLUDED.reviewed_by
                    """, conn, tx);
                await using (upsert.ConfigureAwait(false))
                {
                    upsert.Parameters.AddWithValue(recordType);
                    upsert.Parameters.AddWithValue(recordId);
                    upsert.Parameters.AddWithValue(targetId);
                    upsert.Parameters.AddWithValue(confirm ? "confirmed" : "rejected");
                    upsert.Parameters.AddWithValue(reviewer);
                    await upsert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                if (confirm && a.Canonical != b.Canonical)
                {
                    var (from, to) = recordId == a.Id ? (a.Canonical, b.Canonical) : (b.Canonical, a.Canonical);
                    await _store.MoveCanonicalAsync(conn, tx, recordType, [(from, to)], cancellationToken).ConfigureAwait(false);
                }
                else if (!confirm && a.Canonical == b.Canonical)
                {
                    // Detach the member that is not the group's canonical record; the rest of the group stays.
                    var detach = a.Canonical == a.Id ? b.Id : a.Id;
                    var cmd = new NpgsqlCommand($"UPDATE {_schema}.dedup_records SET canonical_id = id WHERE id = $1", conn, tx);
                    await using (cmd.ConfigureAwait(false))
                    {
                        cmd.Parameters.AddWithValue(detach);
                        await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }
                }

                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task<(long Id, long Canonical)> FindAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string recordType, SourceRecordRef record, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand($"SELECT id, canonical_id FROM {_schema}.dedup_records WHERE record_type = $1 AND source = $2 AND source_id = $3 FOR UPDATE", conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(recordType);
            cmd.Parameters.AddWithValue(record.Source);
            cmd.Parameters.AddWithValue(record.SourceId);
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
                    ? (reader.GetInt64(0), reader.GetInt64(1))
                    : throw new InvalidOperationException($"No '{recordType}' record {record} is under dedup.");
            }
        }
    }

    private async Task<(long, long, string?)?> PairAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long a, long b, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand($"SELECT record_id, target_id, status FROM {_schema}.record_links WHERE (record_id = $1 AND target_id = $2) OR (record_id = $2 AND target_id = $1) LIMIT 1", conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(a);
            cmd.Parameters.AddWithValue(b);
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                return await reader.ReadAsync(cancellationToken).ConfigureAwait(false)
                    ? (reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2))
                    : null;
            }
        }
    }
}
