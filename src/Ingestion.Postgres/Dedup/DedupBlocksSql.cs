using System.Globalization;
using System.Text;
using System.Text.Json;
using Ingestion.Dedup;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Dedup;

/// <summary>A record under dedup as read back for matching: its row id, its canonical record and its profile.</summary>
internal readonly record struct DedupRow(long Id, long Canonical, MatchProfile Profile);

/// <summary>
/// The set-based statements of blocking: staging a batch's records with their blocking keys, and finding the candidates
/// of a whole batch in one query (its distinct probe keys joined against <c>dedup_blocks</c>, one index probe per key,
/// at most <see cref="MaxBlockSize"/> records per key).
/// </summary>
internal static class DedupBlocksSql
{
    /// <summary>The most records read from one block; a larger block (a word and a cell shared by thousands) is cut and counted.</summary>
    internal const int MaxBlockSize = 1_000;

    /// <summary>Files records (upserted, pending, with their keys; old keys of a changed record removed). Returns each record's id, in order.</summary>
    internal static async Task<long[]> StageAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string schema, RecordMatcher matcher, IReadOnlyList<MatchProfile> profiles, CancellationToken cancellationToken)
    {
        var sources = profiles.Select(p => p.Source).ToArray();
        var ids = profiles.Select(p => p.SourceId).ToArray();
        var keys = profiles.Select(p => matcher.Blocking.FileKeys(p)).ToArray();
        var batch = new NpgsqlBatch(conn, tx);
        await using (batch.ConfigureAwait(false))
        {
            // A record filed before under other keys (its text or place changed) leaves its old blocks. Each record is
            // looked up by its unique key (LIMIT 1 keeps the lookup a parameterized index probe, never a scan of the
            // table, whatever the statistics say); a first load finds none.
            var delete = new NpgsqlBatchCommand($"""
                DELETE FROM {schema}.dedup_blocks b
                USING unnest($2::text[], $3::text[]) AS u(source, source_id)
                CROSS JOIN LATERAL (SELECT r.id, r.block_keys FROM {schema}.dedup_records r WHERE r.record_type = $1 AND r.source = u.source AND r.source_id = u.source_id LIMIT 1) r
                CROSS JOIN LATERAL unnest(r.block_keys) AS k(key)
                WHERE b.key = k.key AND b.record_id = r.id
                """);
            delete.Parameters.Add(new NpgsqlParameter { Value = matcher.RecordType });
            delete.Parameters.Add(new NpgsqlParameter { Value = sources });
            delete.Parameters.Add(new NpgsqlParameter { Value = ids });
            batch.BatchCommands.Add(delete);

            var upsert = new NpgsqlBatchCommand($"""
                INSERT INTO {schema}.dedup_records AS r (record_type, source, source_id, match_text, match_time, profile, matched, block_keys)
                SELECT $1, u.source, u.source_id, u.match_text, u.match_time, u.profile::jsonb, false, u.block_keys::bigint[]
                FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[]) WITH ORDINALITY AS u(source, source_id, match_text, match_time, profile, block_keys, n)
                ORDER BY u.n
                ON CONFLICT (record_type, source, source_id) DO UPDATE
                    SET match_text = EXCLUDED.match_text, match_time = EXCLUDED.match_time, profile = EXCLUDED.profile,
                        matched = false, block_keys = EXCLUDED.block_keys, updated_at = now()
                RETURNING r.source, r.source_id, r.id
                """);
            upsert.Parameters.Add(new NpgsqlParameter { Value = matcher.RecordType });
            upsert.Parameters.Add(new NpgsqlParameter { Value = sources });
            upsert.Parameters.Add(new NpgsqlParameter { Value = ids });
            upsert.Parameters.Add(new NpgsqlParameter { Value = profiles.Select(p => matcher.BlockText(p)!).ToArray() });
            upsert.Parameters.Add(new NpgsqlParameter { Value = profiles.Select(p => matcher.BlockTime(p) is { } t ? (object)t.ToUniversalTime() : DBNull.Value).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            upsert.Parameters.Add(new NpgsqlParameter { Value = profiles.Select(p => JsonSerializer.Serialize(matcher.Encode(p))).ToArray() });
            upsert.Parameters.Add(new NpgsqlParameter { Value = keys.Select(ArrayLiteral).ToArray() });
            batch.BatchCommands.Add(upsert);

            var byKey = new Dictionary<(string, string), long>(profiles.Count);
            var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                // The DELETE returns no result set: the reader starts on the upsert's RETURNING rows.
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    byKey[(reader.GetString(0), reader.GetString(1))] = reader.GetInt64(2);
                }
            }

            var result = profiles.Select(p => byKey[(p.Source, p.SourceId)]).ToArray();
            await InsertBlocksAsync(conn, tx, schema, result, keys, cancellationToken).ConfigureAwait(false);
            return result;
        }
    }

    /// <summary>Gives the records of a type that have no keys yet (indexed from a table, or stored before version 2) their keys and .NET search text.</summary>
    internal static async Task<long> BackfillAsync(NpgsqlConnection conn, string schema, RecordMatcher matcher, CancellationToken cancellationToken)
    {
        long done = 0;
        while (true)
        {
            var rows = new List<(long Id, MatchProfile Profile)>();
            var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                var read = new NpgsqlCommand($"SELECT id, source, source_id, profile::text FROM {schema}.dedup_records WHERE record_type = $1 AND block_keys IS NULL ORDER BY id LIMIT 20000 FOR UPDATE", conn, tx);
                await using (read.ConfigureAwait(false))
                {
                    read.Parameters.AddWithValue(matcher.RecordType);
                    var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            rows.Add((reader.GetInt64(0), matcher.Decode(reader.GetString(1), reader.GetString(2), JsonSerializer.Deserialize<string?[]>(reader.GetString(3)) ?? [])));
                        }
                    }
                }

                if (rows.Count == 0)
                {
                    return done;
                }

                // A record whose text no longer normalizes to anything (a changed normalizer) keeps an empty key list.
                var keys = rows.Select(r => matcher.Unmatchable(r.Profile) is null ? matcher.Blocking.FileKeys(r.Profile) : []).ToArray();
                var update = new NpgsqlCommand($"""
                    UPDATE {schema}.dedup_records r SET block_keys = u.block_keys::bigint[], match_text = coalesce(u.match_text, r.match_text)
                    FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, block_keys, match_text)
                    WHERE r.id = u.id
                    """, conn, tx);
                await using (update.ConfigureAwait(false))
                {
                    update.Parameters.AddWithValue(rows.Select(r => r.Id).ToArray());
                    update.Parameters.AddWithValue(keys.Select(ArrayLiteral).ToArray());
                    update.Parameters.Add(new NpgsqlParameter { Value = rows.Select(r => (object?)matcher.BlockText(r.Profile) ?? DBNull.Value).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                    await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await InsertBlocksAsync(conn, tx, schema, rows.Select(r => r.Id).ToArray(), keys, cancellationToken).ConfigureAwait(false);
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                done += rows.Count;
            }
        }
    }

    /// <summary>
    /// The candidates of a batch: for each probe key, the records filed under it (other sources only: the keys carry the
    /// source). One statement; each distinct key is one probe of the <c>(key, record_id)</c> primary key and each record
    /// found one probe of <c>dedup_records</c>' primary key (the LATERAL subqueries with LIMIT stay parameterized index
    /// scans: no hash join that reads the whole table, however stale the statistics).
    /// </summary>
    internal static async Task<(Dictionary<long, List<DedupRow>> ByKey, long CutBlocks)> CandidatesAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string schema, RecordMatcher matcher, long[] probeKeys, CancellationToken cancellationToken)
    {
        var byKey = new Dictionary<long, List<DedupRow>>();
        var decoded = new Dictionary<long, DedupRow>();
        long cut = 0;
        if (probeKeys.Length == 0)
        {
            return (byKey, cut);
        }

        var cmd = new NpgsqlCommand($"""
            SELECT h.key, r.id, r.canonical_id, r.source, r.source_id, r.profile::text
            FROM unnest($1::bigint[]) AS k(key)
            CROSS JOIN LATERAL (SELECT b.key, b.record_id FROM {schema}.dedup_blocks b WHERE b.key = k.key LIMIT $2) h
            CROSS JOIN LATERAL (SELECT r.id, r.canonical_id, r.source, r.source_id, r.profile FROM {schema}.dedup_records r WHERE r.id = h.record_id LIMIT 1) r
            """, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(probeKeys);
            cmd.Parameters.AddWithValue(MaxBlockSize);
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var key = reader.GetInt64(0);
                    var id = reader.GetInt64(1);
                    if (!decoded.TryGetValue(id, out var row))
                    {
                        var profile = matcher.Decode(reader.GetString(3), reader.GetString(4), JsonSerializer.Deserialize<string?[]>(reader.GetString(5)) ?? []);
                        decoded[id] = row = new DedupRow(id, reader.GetInt64(2), profile);
                    }

                    if (!byKey.TryGetValue(key, out var list))
                    {
                        byKey[key] = list = [];
                    }

                    list.Add(row);
                    if (list.Count == MaxBlockSize)
                    {
                        cut++;
                    }
                }
            }
        }

        return (byKey, cut);
    }

    private static async Task InsertBlocksAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string schema, long[] ids, IReadOnlyList<long>[] keys, CancellationToken cancellationToken)
    {
        var total = keys.Sum(k => k.Count);
        var keyColumn = new long[total];
        var idColumn = new long[total];
        var n = 0;
        for (var i = 0; i < ids.Length; i++)
        {
            foreach (var k in keys[i])
            {
                keyColumn[n] = k;
                idColumn[n++] = ids[i];
            }
        }

        var cmd = new NpgsqlCommand($"INSERT INTO {schema}.dedup_blocks (key, record_id) SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING", conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(keyColumn);
            cmd.Parameters.AddWithValue(idColumn);
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static string ArrayLiteral(IReadOnlyList<long> keys)
    {
        var sb = new StringBuilder(2 + (keys.Count * 20));
        sb.Append('{');
        for (var i = 0; i < keys.Count; i++)
        {
            if (i > 0)
            {
                sb.Append(',');
            }

            sb.Append(keys[i].ToString(CultureInfo.InvariantCulture));
        }

        return sb.Append('}').ToString();
    }
}
