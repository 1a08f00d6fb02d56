using System.Globalization;
using System.Text.Json;
using Ingestion.Dedup;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Dedup;

/// <summary>
/// Matching of staged records inside a transaction: their candidates by blocking, each scored on all fields, the best
/// decides; links and review candidates written, groups moved to their canonical record, merges under the merge policy.
/// </summary>
/// <param name="schema">The quoted schema of the dedup tables.</param>
internal sealed partial class DedupMatching(string schema)
{
    private readonly string _schema = schema;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, IReadOnlyList<(string Source, bool Unplaced)>> _sources = new(StringComparer.Ordinal);

    /// <summary>
    /// Starts computing the probe keys of records on the thread pool with the sources the last matching of the type read
    /// (while the caller stages the records); <see cref="MatchAsync"/> uses them if the sources are still the same.
    /// </summary>
    /// <returns>The sources assumed and the keys of each record, in order; null before the type's first matching.</returns>
    internal (IReadOnlyList<(string Source, bool Unplaced)> Sources, Task<IReadOnlyList<BlockEntry>[]> Keys)? StartProbeKeys(RecordMatcher matcher, IReadOnlyList<MatchProfile> profiles)
    {
        if (!_sources.TryGetValue(matcher.RecordType, out var sources))
        {
            return null;
        }

        return (sources, Task.Run(() =>
        {
            var keys = new IReadOnlyList<BlockEntry>[profiles.Count];
            Parallel.For(0, profiles.Count, i => keys[i] = DedupBlocksSql.ProbeEntries(matcher, profiles[i], sources));
            return keys;
        }));
    }

    /// <summary>
    /// Matches staged records (locked per record type, so two sources matching at once see each other's links): their
    /// candidates come from one blocking query for the whole chunk, each is scored on all fields, the best decides.
    /// Records staged pending are marked matched at the end. Records staged as matched in the same transaction
    /// (<c>staged</c>) need no second write, their canonical records come from the staging (their rows stay
    /// locked by it), and the new ones among them have no links to read. Probe keys started by
    /// <see cref="StartProbeKeys"/> for the records (<c>early</c>, in the order of <c>ids</c>) are used when the sources
    /// have not changed since.
    /// </summary>
    internal async Task<DedupBatchResult> MatchAsync(NpgsqlConnection conn, NpgsqlTransaction tx, RecordMatcher matcher, DedupPolicy policy, long[] ids, IReadOnlyDictionary<long, MatchProfile> profiles, Guid? runId, IReadOnlyList<StagedRecord>? staged, (IReadOnlyList<(string Source, bool Unplaced)> Sources, Task<IReadOnlyList<BlockEntry>[]> Keys)? early, Action<string> stepIs, CancellationToken cancellationToken)
    {
        stepIs($"waiting for the dedup lock of '{matcher.RecordType}'");
        var canonicals = staged?.ToDictionary(r => r.Id, r => r.Canonical) ?? new Dictionary<long, long>(ids.Length);
        var sources = await LockAsync(conn, tx, matcher, staged is null ? ids : null, canonicals, cancellationToken).ConfigureAwait(false);

        // A record whose row the staging just inserted has no links yet: only the others' links are read.
        var linkable = staged is null ? ids : staged.Where(r => !r.Inserted).Select(r => r.Id).ToArray();
        stepIs($"reading the links of {linkable.Length} records");
        var (rejected, settled) = await LinkStateAsync(conn, tx, linkable, cancellationToken).ConfigureAwait(false);
        var earlyKeys = early is { } e && e.Sources.SequenceEqual(sources) ? await e.Keys.ConfigureAwait(false) : null;
        var open = Enumerable.Range(0, ids.Length).Where(i => !settled.Contains(ids[i])).ToArray();
        var probes = new (long Record, MatchProfile Profile, IReadOnlyList<BlockEntry> Keys)[open.Length];
        Parallel.For(0, open.Length, i =>
        {
            var id = ids[open[i]];
            probes[i] = (id, profiles[id], earlyKeys?[open[i]] ?? DedupBlocksSql.ProbeEntries(matcher, profiles[id], sources));
        });

        stepIs(CandidateStep(probes));
        var (byRecord, cut) = await DedupBlocksSql.CandidatesAsync(conn, tx, _schema, matcher, probes, cancellationToken).ConfigureAwait(false);
        return await DecideAsync(conn, tx, matcher, policy, probes.Select(p => (p.Record, p.Profile)), canonicals, rejected, byRecord, cut, staged is null ? ids : null, runId, stepIs, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Takes the record type's dedup lock for the transaction, with the candidate query's settings, and reads the
    /// type's sources (remembered for <see cref="StartProbeKeys"/>) and, when <paramref name="readCanonicals"/> is
    /// given, the canonical records of those rows into <paramref name="canonicals"/>.
    /// </summary>
    private async Task<IReadOnlyList<(string Source, bool Unplaced)>> LockAsync(NpgsqlConnection conn, NpgsqlTransaction tx, RecordMatcher matcher, long[]? readCanonicals, Dictionary<long, long> canonicals, CancellationToken cancellationToken)
    {
        var sources = new List<(string Source, bool Unplaced)>();
        var lockAndRead = new NpgsqlBatch(conn, tx);
        await using (lockAndRead.ConfigureAwait(false))
        {
            AddCandidateSettings(lockAndRead);
            var lockCmd = new NpgsqlBatchCommand("SELECT pg_advisory_xact_lock(1684366704, hashtext($1))");
            lockCmd.Parameters.Add(new NpgsqlParameter { Value = matcher.RecordType });
            lockAndRead.BatchCommands.Add(lockCmd);
            if (readCanonicals is not null)
            {
                var read = new NpgsqlBatchCommand($"SELECT id, canonical_id FROM {_schema}.dedup_records WHERE id = ANY($1)");
                read.Parameters.Add(new NpgsqlParameter { Value = readCanonicals });
                lockAndRead.BatchCommands.Add(read);
            }

            var src = new NpgsqlBatchCommand($"SELECT source, unplaced FROM {_schema}.dedup_sources WHERE record_type = $1 ORDER BY source");
            src.Parameters.Add(new NpgsqlParameter { Value = matcher.RecordType });
            lockAndRead.BatchCommands.Add(src);
            var reader = await lockAndRead.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                if (readCanonicals is not null)
                {
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        canonicals[reader.GetInt64(0)] = reader.GetInt64(1);
                    }

                    await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
                }

                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    sources.Add((reader.GetString(0), reader.GetBoolean(1)));
                }
            }
        }

        _sources[matcher.RecordType] = sources;
        return sources;
    }

    /// <summary>
    /// The candidate query's settings for the transaction: its plan is a few index probes per record, so compiling it
    /// (JIT, chosen for its row estimate) costs more than it saves; its probe list must not spill to a temporary file.
    /// </summary>
    private static void AddCandidateSettings(NpgsqlBatch batch)
    {
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL jit = off"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL work_mem = '32MB'"));
    }

    private static string CandidateStep(IReadOnlyList<(long Record, MatchProfile Profile, IReadOnlyList<BlockEntry> Keys)> probes) =>
        $"the candidate query ({probes.Count} records, {probes.Sum(p => p.Keys.Count)} block keys probed in dedup_blocks)";

    /// <summary>
    /// Scores each record (by its row id) against its candidates, skipping pairs once rejected, and writes the
    /// best match of each as a link, a review or a report (the groups moved to their canonical record, merged under
    /// the merge policy); then marks <paramref name="markMatched"/> (records staged pending) matched.
    /// </summary>
    private async Task<DedupBatchResult> DecideAsync(NpgsqlConnection conn, NpgsqlTransaction tx, RecordMatcher matcher, DedupPolicy policy, IEnumerable<(long Record, MatchProfile Profile)> records, IReadOnlyDictionary<long, long> canonicals, HashSet<(long, long)> rejected, Dictionary<long, List<DedupRow>> byRecord, long cut, long[]? markMatched, Guid? runId, Action<string> stepIs, CancellationToken cancellationToken)
    {
        var links = new List<(long Record, long Target, double Score, string Reason, string Status, long OldCanonical, long NewCanonical)>();
        long compared = 0;
        var seen = new HashSet<long>();

        // Groups joined by this batch's links, so a record never links into the group it already joined (records of two
        // sources in one batch find each other both ways) and every move goes to the group's final canonical record.
        var moved = new Dictionary<long, long>();
        long Root(long c)
        {
            while (moved.TryGetValue(c, out var next))
            {
                c = next;
            }

            return c;
        }

        foreach (var (id, profile) in records)
        {
            var canonical = Root(canonicals[id]);
            seen.Clear();
            (long Target, long Canonical, MatchScore Score)? best = null;
            foreach (var c in byRecord.TryGetValue(id, out var list) ? list : [])
            {
                if (!seen.Add(c.Id) || rejected.Contains((id, c.Id)) || rejected.Contains((c.Id, id)))
                {
                    continue;
                }

                compared++;
                var score = matcher.Score(profile, c.Profile);
                if (score.Decision != MatchDecision.None && (best is null || score.Total > best.Value.Score.Total || (score.Total == best.Value.Score.Total && c.Id < best.Value.Target)))
                {
                    best = (c.Id, c.Canonical, score);
                }
            }

            if (best is not { } b)
            {
                continue;
            }

            // The group the best match is in now (it may have joined another earlier in this batch).
            var joined = Root(b.Canonical);
            if (joined == canonical)
            {
                continue;
            }

            var status = policy.Kind == DedupPolicyKind.ReportOnly ? "reported"
                : b.Score.Decision == MatchDecision.Link ? "linked"
                : "review";
            links.Add((id, b.Target, b.Score.Total, b.Score.Explain(), status, canonical, joined));
            if (status == "linked")
            {
                moved[canonical] = joined;
            }
        }

        for (var i = 0; i < links.Count; i++)
        {
            links[i] = links[i] with { NewCanonical = Root(links[i].NewCanonical) };
        }

        stepIs($"writing {links.Count} links");
        var (linked, review) = await WriteLinksAsync(conn, tx, matcher.RecordType, links, runId, cancellationToken).ConfigureAwait(false);
        long merged = 0, conflicts = 0;
        if (policy.Kind == DedupPolicyKind.Merge && linked.Count > 0)
        {
            stepIs($"merging {linked.Count} groups");
            (merged, conflicts) = await MergeAsync(conn, tx, matcher, policy, linked.Select(l => l.NewCanonical).Distinct().ToArray(), cancellationToken).ConfigureAwait(false);
        }

        if (markMatched is not null)
        {
            stepIs($"marking {markMatched.Length} records matched");
            var done = new NpgsqlCommand($"UPDATE {_schema}.dedup_records SET matched = true WHERE id = ANY($1) AND NOT matched", conn, tx);
            await using (done.ConfigureAwait(false))
            {
                done.Parameters.AddWithValue(markMatched);
                await done.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        return new DedupBatchResult { Linked = linked.Count, ForReview = review, Compared = compared, Merged = merged, Conflicts = conflicts, CutBlocks = cut };
    }

    private async Task<(HashSet<(long, long)> Rejected, HashSet<long> Settled)> LinkStateAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long[] ids, CancellationToken cancellationToken)
    {
        var rejected = new HashSet<(long, long)>();
        var settled = new HashSet<long>();
        if (ids.Length == 0)
        {
            return (rejected, settled);
        }

        var cmd = new NpgsqlCommand($"SELECT record_id, target_id, status FROM {_schema}.record_links WHERE record_id = ANY($1) OR target_id = ANY($1)", conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(ids);
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                var set = ids.ToHashSet();
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var (record, target, status) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2));
                    if (status == "rejected")
                    {
                        rejected.Add((record, target));
                    }
                    else if (set.Contains(record))
                    {
                        // The record already has a link, a pending review or a report: it is not re-decided on every run.
                        settled.Add(record);
                    }
                }
            }
        }

        return (rejected, settled);
    }

    private async Task<(List<(long Record, long NewCanonical)> Linked, long Review)> WriteLinksAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string recordType, List<(long Record, long Target, double Score, string Reason, string Status, long OldCanonical, long NewCanonical)> links, Guid? runId, CancellationToken cancellationToken)
    {
        var linked = new List<(long, long)>();
        long review = 0;
        if (links.Count == 0)
        {
            return (linked, review);
        }

        var inserted = new HashSet<long>();
        var cmd = new NpgsqlCommand($"""
            INSERT INTO {_schema}.record_links (record_type, record_id, target_id, score, reason, status, run_id)
            SELECT $1, u.record_id, u.target_id, u.score, u.reason, u.status, $7
            FROM unnest($2::bigint[], $3::bigint[], $4::real[], $5::text[], $6::text[]) AS u(record_id, target_id, score, reason, status)
            ON CONFLICT (record_id, target_id) DO NOTHING
            RETURNING record_id
            """, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(recordType);
            cmd.Parameters.AddWithValue(links.Select(l => l.Record).ToArray());
            cmd.Parameters.AddWithValue(links.Select(l => l.Target).ToArray());
            cmd.Parameters.AddWithValue(links.Select(l => (float)l.Score).ToArray());
            cmd.Parameters.AddWithValue(links.Select(l => l.Reason).ToArray());
            cmd.Parameters.AddWithValue(links.Select(l => l.Status).ToArray());
            cmd.Parameters.Add(new NpgsqlParameter { Value = runId is { } r ? r : DBNull.Value, NpgsqlDbType = NpgsqlDbType.Uuid });
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    inserted.Add(reader.GetInt64(0));
                }
            }
        }

        var moves = new List<(long Old, long New)>();
        foreach (var l in links.Where(l => inserted.Contains(l.Record)))
        {
            if (l.Status == "linked")
            {
                linked.Add((l.Record, l.NewCanonical));
                moves.Add((l.OldCanonical, l.NewCanonical));
            }
            else
            {
                review++;
            }
        }

        if (moves.Count > 0)
        {
            await MoveCanonicalAsync(conn, tx, recordType, moves, cancellationToken).ConfigureAwait(false);
        }

        return (linked, review);
    }

    internal async Task MoveCanonicalAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string recordType, IReadOnlyList<(long Old, long New)> moves, CancellationToken cancellationToken)
    {
        // Every member of the old group joins the new one (the record itself, and records linked to it earlier).
        var cmd = new NpgsqlCommand($"""
            UPDATE {_schema}.dedup_records r SET canonical_id = u.new_canonical
            FROM unnest($2::bigint[], $3::bigint[]) AS u(old_canonical, new_canonical)
            WHERE r.record_type = $1 AND r.canonical_id = u.old_canonical
            """, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(recordType);
            cmd.Parameters.AddWithValue(moves.Select(m => m.Old).ToArray());
            cmd.Parameters.AddWithValue(moves.Select(m => m.New).ToArray());
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    internal async Task<(long Merged, long Conflicts)> MergeAsync(NpgsqlConnection conn, NpgsqlTransaction tx, RecordMatcher matcher, DedupPolicy policy, long[] canonicals, CancellationToken cancellationToken)
    {
        var groups = new Dictionary<long, List<MatchProfile>>();
        var read = new NpgsqlCommand($"SELECT canonical_id, source, source_id, profile::text FROM {_schema}.dedup_records WHERE record_type = $1 AND canonical_id = ANY($2)", conn, tx);
        await using (read.ConfigureAwait(false))
        {
            read.Parameters.AddWithValue(matcher.RecordType);
            read.Parameters.AddWithValue(canonicals);
            var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var c = reader.GetInt64(0);
                    if (!groups.TryGetValue(c, out var list))
                    {
                        groups[c] = list = [];
                    }

                    list.Add(matcher.Decode(reader.GetString(1), reader.GetString(2), JsonSerializer.Deserialize<string?[]>(reader.GetString(3)) ?? []));
                }
            }
        }

        long conflicts = 0;
        var ids = new List<long>();
        var records = new List<string>();
        var sources = new List<string>();
        var conflictJson = new List<string>();
        foreach (var (canonical, members) in groups)
        {
            var merged = MergeResolver.Merge(matcher, members, policy.SourcePrecedence);
            var encoded = matcher.Encode(matcher.Profile("merged", canonical.ToString(CultureInfo.InvariantCulture), merged.Values));
            ids.Add(canonical);
            records.Add(JsonSerializer.Serialize(matcher.Fields.ToDictionary(f => f.Name, f => encoded[f.Ordinal])));
            sources.Add(JsonSerializer.Serialize(matcher.Fields.ToDictionary(f => f.Name, f => merged.FieldSources[f.Ordinal])));
            conflictJson.Add(JsonSerializer.Serialize(merged.Conflicts.Select(c => new { field = c.Field, winner = c.WinningSource, values = c.Values.ToDictionary(v => v.Key, v => v.Value) })));
            conflicts += merged.Conflicts.Count;
        }

        var write = new NpgsqlCommand($"""
            INSERT INTO {_schema}.dedup_merged (record_type, canonical_id, record, field_sources, conflicts)
            SELECT $1, u.id, u.record::jsonb, u.sources::jsonb, u.conflicts::jsonb
            FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS u(id, record, sources, conflicts)
            ON CONFLICT (record_type, canonical_id) DO UPDATE
                SET record = EXCLUDED.record, field_sources = EXCLUDED.field_sources, conflicts = EXCLUDED.conflicts, updated_at = now()
            """, conn, tx);
        await using (write.ConfigureAwait(false))
        {
            write.Parameters.AddWithValue(matcher.RecordType);
            write.Parameters.AddWithValue(ids.ToArray());
            write.Parameters.AddWithValue(records.ToArray());
            write.Parameters.AddWithValue(sources.ToArray());
            write.Parameters.AddWithValue(conflictJson.ToArray());
            await write.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        return (groups.Count, conflicts);
    }
}
