using System.Text.Json;
using Ingestion.Dedup;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Dedup;

/// <summary>A record under dedup as read back for matching: its row id, its canonical record and its profile.</summary>
internal readonly record struct DedupRow(long Id, long Canonical, MatchProfile Profile);

/// <summary>A record as staged: its row id, its canonical record, and whether its row is new (then it has no links yet).</summary>
internal readonly record struct StagedRecord(long Id, long Canonical, bool Inserted);

/// <summary>
/// The set-based statements of blocking: staging a batch's records with their blocking keys, and finding the candidates
/// of a whole batch in one query (each record's probe keys joined against <c>dedup_blocks</c>, one index probe per key;
/// the entries of a placed key are checked on the exact distance and time in the index before a candidate is read; at
/// most <see cref="MaxBlockScan"/> entries read and <see cref="MaxBlockSize"/> candidates kept per key).
/// </summary>
internal static class DedupBlocksSql
{
    /// <summary>The most candidates kept from one probe of a block (after the distance and time checks); a probe that reaches it is counted as cut.</summary>
    internal const int MaxBlockSize = 1_000;

    /// <summary>The most entries of one block read by one probe (a word shared by more records than that in one cell and bucket).</summary>
    internal const int MaxBlockScan = 10_000;

    /// <summary>The savepoint a batch's records are first inserted under (see <see cref="InsertRecordsAsync"/>).</summary>
    private const string PlainInsertSavepoint = "ingestion_dedup_insert";

    /// <summary>How <see cref="WriteRecordsAsync"/> writes records.</summary>
    private enum RecordWrite
    {
        /// <summary>A plain insert: fails when any record is filed already.</summary>
        Insert,

        /// <summary>Inserts the records not filed yet and skips the others.</summary>
        InsertNew,

        /// <summary>Removes the old blocks of records filed already and updates their rows.</summary>
        Refresh,
    }

    /// <summary>
    /// Files records with their keys, pending or already marked matched (when the caller matches them in the same
    /// transaction). New records are inserted in one statement; only the records already filed (refreshed by a re-run)
    /// then have their old blocks removed and their row updated. Returns each record's id, canonical record and whether
    /// it is new (a new record has no links yet), in order.
    /// </summary>
    internal static async Task<StagedRecord[]> StageAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string schema, RecordMatcher matcher, IReadOnlyList<MatchProfile> profiles, bool matched, CancellationToken cancellationToken)
    {
        // The keys and encoded profiles are pure functions of each record: computed on every core (the server waits meanwhile).
        var entries = new IReadOnlyList<BlockEntry>[profiles.Count];
        var encoded = new string[profiles.Count];
        Parallel.For(0, profiles.Count, i =>
        {
            entries[i] = matcher.Blocking.FileEntries(profiles[i]);
            encoded[i] = JsonSerializer.Serialize(matcher.Encode(profiles[i]));
        });

        await MarkUnplacedAsync(conn, tx, schema, matcher, profiles, entries, cancellationToken).ConfigureAwait(false);
        var result = new StagedRecord[profiles.Count];
        var all = Enumerable.Range(0, profiles.Count).ToArray();
        var byKey = await InsertRecordsAsync(conn, tx, schema, matcher, profiles, all, encoded, entries, matched, cancellationToken).ConfigureAwait(false);
        var filed = all.Where(i => !byKey.ContainsKey((profiles[i].Source, profiles[i].SourceId))).ToArray();
        for (var i = 0; i < profiles.Count; i++)
        {
            if (byKey.TryGetValue((profiles[i].Source, profiles[i].SourceId), out var row))
            {
                result[i] = new StagedRecord(row.Id, row.Canonical, Inserted: true);
            }
        }

        if (filed.Length > 0)
        {
            var refreshed = await WriteRecordsAsync(conn, tx, schema, matcher, profiles, filed, encoded, entries, matched, RecordWrite.Refresh, cancellationToken).ConfigureAwait(false);
            foreach (var i in filed)
            {
                var row = refreshed[(profiles[i].Source, profiles[i].SourceId)];
                result[i] = new StagedRecord(row.Id, row.Canonical, Inserted: false);
            }
        }

        await InsertBlocksAsync(conn, schema, matcher, result.Select(r => r.Id).ToArray(), profiles, entries, cancellationToken).ConfigureAwait(false);
        return result;
    }

    /// <summary>
    /// Inserts the new records among some of a batch; gives the id and canonical record of each one inserted (the records
    /// already filed are left out). The records are first inserted with a plain <c>INSERT</c> under a savepoint: most
    /// batches hold only new records, and <c>ON CONFLICT</c> costs about a third more per row on the server (speculative
    /// insertion). When a record of the batch is filed already (a re-run, or the same record in the batch twice), that
    /// insert fails on the unique key, is undone to the savepoint, and the batch is inserted again skipping the records
    /// filed.
    /// </summary>
    private static async Task<Dictionary<(string, string), (long Id, long Canonical)>> InsertRecordsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string schema, RecordMatcher matcher, IReadOnlyList<MatchProfile> profiles, int[] which, string[] encoded, IReadOnlyList<BlockEntry>[] entries, bool matched, CancellationToken cancellationToken)
    {
        await tx.SaveAsync(PlainInsertSavepoint, cancellationToken).ConfigureAwait(false);
        Dictionary<(string, string), (long Id, long Canonical)> inserted;
        try
        {
            inserted = await WriteRecordsAsync(conn, tx, schema, matcher, profiles, which, encoded, entries, matched, RecordWrite.Insert, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.TableName == "dedup_records")
        {
            await tx.RollbackAsync(PlainInsertSavepoint, cancellationToken).ConfigureAwait(false);
            inserted = await WriteRecordsAsync(conn, tx, schema, matcher, profiles, which, encoded, entries, matched, RecordWrite.InsertNew, cancellationToken).ConfigureAwait(false);
        }

        await tx.ReleaseAsync(PlainInsertSavepoint, cancellationToken).ConfigureAwait(false);
        return inserted;
    }

    /// <summary>Inserts some records of a batch (all new, or skipping those filed), or removes the old blocks of records already filed and updates their rows.</summary>
    private static async Task<Dictionary<(string, string), (long Id, long Canonical)>> WriteRecordsAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string schema, RecordMatcher matcher, IReadOnlyList<MatchProfile> profiles, int[] which, string[] encoded, IReadOnlyList<BlockEntry>[] entries, bool matched, RecordWrite mode, CancellationToken cancellationToken)
    {
        var refresh = mode == RecordWrite.Refresh;
        var sources = which.Select(i => profiles[i].Source).ToArray();
        var ids = which.Select(i => profiles[i].SourceId).ToArray();
        var batch = new NpgsqlBatch(conn, tx);
        await using (batch.ConfigureAwait(false))
        {
            if (refresh)
            {
                // A record filed before under other keys (its text or place changed) leaves its old blocks. Each record is
                // looked up by its unique key (LIMIT 1 keeps the lookup a parameterized index probe, never a scan of the
                // table, whatever the statistics say).
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
            }

            var conflict = mode switch
            {
                RecordWrite.Refresh => """
                    ON CONFLICT (record_type, source, source_id) DO UPDATE
                        SET match_text = EXCLUDED.match_text, match_time = EXCLUDED.match_time, profile = EXCLUDED.profile,
                            matched = EXCLUDED.matched, block_keys = EXCLUDED.block_keys, updated_at = now()
                    """,
                RecordWrite.InsertNew => "ON CONFLICT (record_type, source, source_id) DO NOTHING",
                _ => string.Empty,
            };
            var write = new NpgsqlBatchCommand($"""
                INSERT INTO {schema}.dedup_records AS r (record_type, source, source_id, match_text, match_time, profile, matched, block_keys)
                SELECT $1, u.source, u.source_id, u.match_text, u.match_time, u.profile::jsonb, $8, ($9::bigint[])[u.keys_from:u.keys_to]
                FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::int[], $10::int[]) WITH ORDINALITY AS u(source, source_id, match_text, match_time, profile, keys_from, keys_to, n)
                ORDER BY u.n
                {conflict}
                RETURNING r.source, r.source_id, r.id, r.canonical_id
                """);
            write.Parameters.Add(new NpgsqlParameter { Value = matcher.RecordType });
            write.Parameters.Add(new NpgsqlParameter { Value = sources });
            write.Parameters.Add(new NpgsqlParameter { Value = ids });
            write.Parameters.Add(new NpgsqlParameter { Value = which.Select(i => matcher.BlockText(profiles[i])!).ToArray() });
            write.Parameters.Add(new NpgsqlParameter { Value = which.Select(i => matcher.BlockTime(profiles[i]) is { } t ? (object)t.ToUniversalTime() : DBNull.Value).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            write.Parameters.Add(new NpgsqlParameter { Value = which.Select(i => encoded[i]).ToArray() });
            var (keys, from, to) = KeySlices(entries, which);
            write.Parameters.Add(new NpgsqlParameter { Value = from });
            write.Parameters.Add(new NpgsqlParameter { Value = matched });
            write.Parameters.Add(new NpgsqlParameter { Value = keys });
            write.Parameters.Add(new NpgsqlParameter { Value = to });
            batch.BatchCommands.Add(write);

            var byKey = new Dictionary<(string, string), (long, long)>(which.Length);
            var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                // The DELETE returns no result set: the reader starts on the RETURNING rows.
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    byKey[(reader.GetString(0), reader.GetString(1))] = (reader.GetInt64(2), reader.GetInt64(3));
                }
            }

            return byKey;
        }
    }

    /// <summary>Gives the records of a type that have no keys yet (indexed from a table, stored before version 3) their keys and .NET search text.</summary>
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
                var entries = rows.Select(r => matcher.Unmatchable(r.Profile) is null ? matcher.Blocking.FileEntries(r.Profile) : []).ToArray();
                var update = new NpgsqlCommand($"""
                    UPDATE {schema}.dedup_records r SET block_keys = ($5::bigint[])[u.keys_from:u.keys_to], match_text = coalesce(u.match_text, r.match_text)
                    FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[]) AS u(id, keys_from, keys_to, match_text)
                    WHERE r.id = u.id
                    """, conn, tx);
                await using (update.ConfigureAwait(false))
                {
                    var (keys, from, to) = KeySlices(entries, [.. Enumerable.Range(0, entries.Length)]);
                    update.Parameters.AddWithValue(rows.Select(r => r.Id).ToArray());
                    update.Parameters.AddWithValue(from);
                    update.Parameters.AddWithValue(to);
                    update.Parameters.Add(new NpgsqlParameter { Value = rows.Select(r => (object?)matcher.BlockText(r.Profile) ?? DBNull.Value).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                    update.Parameters.AddWithValue(keys);
                    await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                await MarkUnplacedAsync(conn, tx, schema, matcher, rows.Select(r => r.Profile).ToArray(), entries, cancellationToken).ConfigureAwait(false);
                await InsertBlocksAsync(conn, schema, matcher, rows.Select(r => r.Id).ToArray(), rows.Select(r => r.Profile).ToArray(), entries, cancellationToken).ConfigureAwait(false);
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                done += rows.Count;
            }
        }
    }

    /// <summary>
    /// The candidates of a batch: for each record's probe keys, the records filed under them (other sources only: the
    /// keys carry the source) that are within the maximum distance and the tolerance of it (placed keys only; checked on
    /// the index entries, before the record is read). One statement; each probe is one probe of the btree on
    /// <c>dedup_blocks.key</c> (which includes the place and time), each record found one probe of <c>dedup_records</c>'
    /// primary key (the LATERAL subqueries with LIMIT stay parameterized index scans: no hash join that reads the whole
    /// table, however stale the statistics).
    /// </summary>
    internal static async Task<(Dictionary<long, List<DedupRow>> ByRecord, long CutBlocks)> CandidatesAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string schema, RecordMatcher matcher, IReadOnlyList<(long Record, MatchProfile Profile, IReadOnlyList<BlockEntry> Keys)> probes, CancellationToken cancellationToken)
    {
        var byRecord = new Dictionary<long, List<DedupRow>>();
        var decoded = new Dictionary<long, DedupRow>();
        long cut = 0;
        var total = probes.Sum(p => p.Keys.Count);
        if (total == 0)
        {
            return (byRecord, cut);
        }

        var keys = new long[total];
        var owners = new long[total];
        var places = new BlockPlace[total];
        var n = 0;
        foreach (var (record, profile, entries) in probes)
        {
            var place = BlockPlace.Of(matcher, profile);
            foreach (var e in entries)
            {
                (keys[n], owners[n], places[n]) = (e.Key, record, e.Placed ? place : default);
                n++;
            }
        }

        // In key order, consecutive probes descend to neighbouring pages of the index (40% less time than in record order).
        SortByKey(keys, owners, places);

        var cmd = new NpgsqlCommand($"""
            SELECT p.i, r.id, r.canonical_id, r.source, r.source_id, r.profile::text
            FROM unnest($1::bigint[], $2::real[], $3::real[], $4::real[], $5::float8[]) WITH ORDINALITY AS p(key, x, y, z, t, i)
            CROSS JOIN LATERAL (
                SELECT e.record_id
                FROM (SELECT b.record_id, b.x, b.y, b.z, b.t FROM {schema}.dedup_blocks b WHERE b.key = p.key LIMIT $6) e
                WHERE (p.x IS NULL OR e.x IS NULL OR (e.x - p.x) * (e.x - p.x) + (e.y - p.y) * (e.y - p.y) + (e.z - p.z) * (e.z - p.z) <= $8)
                  AND (p.t IS NULL OR e.t IS NULL OR abs(e.t - p.t) <= $9)
                LIMIT $7) h
            CROSS JOIN LATERAL (SELECT r.id, r.canonical_id, r.source, r.source_id, r.profile FROM {schema}.dedup_records r WHERE r.id = h.record_id LIMIT 1) r
            """, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(keys);
            cmd.Parameters.Add(Column(places.Select(p => p.X), NpgsqlDbType.Real));
            cmd.Parameters.Add(Column(places.Select(p => p.Y), NpgsqlDbType.Real));
            cmd.Parameters.Add(Column(places.Select(p => p.Z), NpgsqlDbType.Real));
            cmd.Parameters.Add(Column(places.Select(p => p.T), NpgsqlDbType.Double));
            cmd.Parameters.AddWithValue(MaxBlockScan);
            cmd.Parameters.AddWithValue(MaxBlockSize);
            cmd.Parameters.AddWithValue(BlockPlace.MaxChordSquared(matcher));
            cmd.Parameters.AddWithValue(BlockPlace.MaxSeconds(matcher));
            var perProbe = new int[keys.Length];
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var probe = (int)reader.GetInt64(0) - 1;
                    var id = reader.GetInt64(1);
                    if (!decoded.TryGetValue(id, out var row))
                    {
                        var profile = matcher.Decode(reader.GetString(3), reader.GetString(4), JsonSerializer.Deserialize<string?[]>(reader.GetString(5)) ?? []);
                        decoded[id] = row = new DedupRow(id, reader.GetInt64(2), profile);
                    }

                    var owner = owners[probe];
                    if (!byRecord.TryGetValue(owner, out var list))
                    {
                        byRecord[owner] = list = [];
                    }

                    list.Add(row);
                    if (++perProbe[probe] == MaxBlockSize)
                    {
                        cut++;
                    }
                }
            }
        }

        return (byRecord, cut);
    }

    /// <summary>
    /// Marks the sources of records filed without a place (the matcher blocks on a point, a date or codes the record
    /// lacks: only its whole name is filed), so the records of other sources probe the keys of whole names in them.
    /// </summary>
    private static async Task MarkUnplacedAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string schema, RecordMatcher matcher, IReadOnlyList<MatchProfile> profiles, IReadOnlyList<BlockEntry>[] entries, CancellationToken cancellationToken)
    {
        if (!Places(matcher))
        {
            return;
        }

        var sources = Enumerable.Range(0, profiles.Count).Where(i => entries[i].Count > 0 && !entries[i].Any(e => e.Placed)).Select(i => profiles[i].Source).Distinct(StringComparer.Ordinal).ToArray();
        if (sources.Length == 0)
        {
            return;
        }

        var cmd = new NpgsqlCommand($"UPDATE {schema}.dedup_sources SET unplaced = true WHERE record_type = $1 AND source = ANY($2) AND NOT unplaced", conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(matcher.RecordType);
            cmd.Parameters.AddWithValue(sources);
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Whether the matcher's text keys combine words with a place (a cell, a bucket or codes).</summary>
    internal static bool Places(RecordMatcher matcher) =>
        matcher.Blocking.GeoField is not null || matcher.Blocking.TimeField is not null || matcher.Blocking.ExactFields.Count > 0;

    /// <summary>
    /// A record's probe keys in the other sources: in a source with no record filed without a place, a record that has
    /// a place does not probe the keys of its whole name (only records without a place are filed under those alone).
    /// </summary>
    internal static IReadOnlyList<BlockEntry> ProbeEntries(RecordMatcher matcher, MatchProfile profile, IReadOnlyList<(string Source, bool Unplaced)> sources)
    {
        var result = new List<BlockEntry>();
        foreach (var (source, unplaced) in sources)
        {
            if (string.Equals(source, profile.Source, StringComparison.Ordinal))
            {
                continue;
            }

            var entries = matcher.Blocking.ProbeEntries(profile, [source]);
            var placed = !unplaced && entries.Any(e => e.Placed);
            foreach (var e in entries)
            {
                if (!placed || e.Placed)
                {
                    result.Add(e);
                }
            }
        }

        return result;
    }

    /// <summary>Sorts three parallel columns by the first.</summary>
    private static void SortByKey(long[] keys, long[] owners, BlockPlace[] places)
    {
        var order = new int[keys.Length];
        for (var i = 0; i < order.Length; i++)
        {
            order[i] = i;
        }

        var sorted = (long[])keys.Clone();
        Array.Sort(sorted, order);
        var o = (long[])owners.Clone();
        var p = (BlockPlace[])places.Clone();
        for (var i = 0; i < order.Length; i++)
        {
            (keys[i], owners[i], places[i]) = (sorted[i], o[order[i]], p[order[i]]);
        }
    }

    private static NpgsqlParameter Column<T>(IEnumerable<T?> values, NpgsqlDbType type)
        where T : struct =>
        new() { Value = values.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | type };

    /// <summary>Writes the block entries of records by binary COPY (the entries of placed keys carry the record's place and time).</summary>
    private static async Task InsertBlocksAsync(NpgsqlConnection conn, string schema, RecordMatcher matcher, long[] ids, IReadOnlyList<MatchProfile> profiles, IReadOnlyList<BlockEntry>[] entries, CancellationToken cancellationToken)
    {
        var total = entries.Sum(e => e.Count);
        var keys = new long[total];
        var owners = new long[total];
        var places = new BlockPlace[total];
        var n = 0;
        for (var i = 0; i < ids.Length; i++)
        {
            var place = BlockPlace.Of(matcher, profiles[i]);
            foreach (var e in entries[i])
            {
                (keys[n], owners[n], places[n]) = (e.Key, ids[i], e.Placed ? place : default);
                n++;
            }
        }

        // In key order: consecutive entries go to neighbouring pages of the index.
        SortByKey(keys, owners, places);
        var writer = await conn.BeginBinaryImportAsync($"COPY {schema}.dedup_blocks (key, record_id, x, y, z, t) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false);
        await using (writer.ConfigureAwait(false))
        {
            // Synchronous writes: they only fill Npgsql's buffer, and flush it when full.
            for (var i = 0; i < total; i++)
            {
                var (key, id, p) = (keys[i], owners[i], places[i]);
                writer.StartRow();
                writer.Write(key, NpgsqlDbType.Bigint);
                writer.Write(id, NpgsqlDbType.Bigint);
                Write(writer, p.X, NpgsqlDbType.Real);
                Write(writer, p.Y, NpgsqlDbType.Real);
                Write(writer, p.Z, NpgsqlDbType.Real);
                Write(writer, p.T, NpgsqlDbType.Double);
            }

            await writer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private static void Write<T>(NpgsqlBinaryImporter writer, T? value, NpgsqlDbType type)
        where T : struct
    {
        if (value is { } v)
        {
            writer.Write(v, type);
        }
        else
        {
            writer.WriteNull();
        }
    }

    /// <summary>
    /// The keys of some records as one array and, for each record, the 1-based bounds of its keys in it (an empty
    /// slice when it has none): each row's <c>block_keys</c> is a slice of one array parameter, with no text to format
    /// or parse.
    /// </summary>
    private static (long[] Keys, int[] From, int[] To) KeySlices(IReadOnlyList<BlockEntry>[] entries, int[] which)
    {
        var keys = new long[which.Sum(i => entries[i].Count)];
        var from = new int[which.Length];
        var to = new int[which.Length];
        var n = 0;
        for (var w = 0; w < which.Length; w++)
        {
            from[w] = n + 1;
            foreach (var e in entries[which[w]])
            {
                keys[n++] = e.Key;
            }

            to[w] = n;
        }

        return (keys, from, to);
    }
}
