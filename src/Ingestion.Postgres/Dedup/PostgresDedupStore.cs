using System.Globalization;
using System.Text.Json;
using Ingestion.Dedup;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sql;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Dedup;

/// <summary>The outcome of matching one batch of records against the records of other sources.</summary>
public sealed record DedupBatchResult
{
    /// <summary>Records newly linked to a canonical record (policy link or merge).</summary>
    public long Linked { get; init; }

    /// <summary>Pairs newly left for review (or reported, under the report-only policy).</summary>
    public long ForReview { get; init; }

    /// <summary>Records that cannot be matched (a required field is empty or normalizes to nothing).</summary>
    public long Unmatchable { get; init; }

    /// <summary>Candidate pairs scored.</summary>
    public long Compared { get; init; }

    /// <summary>Merged canonical rows written (merge policy).</summary>
    public long Merged { get; init; }

    /// <summary>Field conflicts found while merging (merge policy).</summary>
    public long Conflicts { get; init; }
}

/// <summary>
/// Cross-source duplicate detection in PostgreSQL. Each record under dedup gets a row in
/// <c>dedup_records</c> (normalized search text and time, encoded profile, canonical record). Candidates
/// of a batch are found in one query (the batch as arrays joined <c>LATERAL</c>), without comparing every pair:
/// same record type, another source, the search time within the matcher's tolerance (a btree range scan: the
/// block) and, within that window only, the search text similar by trigrams (<c>pg_trgm</c> <c>similarity()</c>
/// at the field's threshold), best few per record; a matcher without a time field blocks on the trigram GIN
/// index (<c>%</c>) instead. The candidates are scored in .NET by
/// the <see cref="RecordMatcher"/>, so every link carries its explanation; links and review candidates go to
/// <c>record_links</c>. A pair once rejected never links again. Thread-safe; one transaction per batch.
/// </summary>
public sealed class PostgresDedupStore
{
    private const int CandidatesPerRecord = 8;
    private readonly IngestionDatabase _database;
    private readonly string _schema;

    /// <summary>Creates the store.</summary>
    /// <param name="database">The library's database.</param>
    public PostgresDedupStore(IngestionDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        _schema = PgIdentifier.Quote(database.Schema, "Ingestion:Postgres:Schema");
    }

    /// <summary>Finds the duplicates of a batch of one source's records among other sources' records, and links or reports them per the policy.</summary>
    /// <param name="matcher">The matcher of the record type.</param>
    /// <param name="policy">The policy of the source set.</param>
    /// <param name="profiles">The batch's records (one source).</param>
    /// <param name="runId">The run, recorded on the links.</param>
    /// <param name="dryRun">Compute and count, but commit nothing.</param>
    /// <param name="cancellationToken">Cancels the batch; nothing of it is committed.</param>
    /// <returns>The counts.</returns>
    public async Task<DedupBatchResult> MatchBatchAsync(RecordMatcher matcher, DedupPolicy policy, IReadOnlyList<MatchProfile> profiles, Guid? runId, bool dryRun, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(matcher);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(profiles);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var latest = new Dictionary<(string, string), MatchProfile>();
        var unmatchable = 0;
        foreach (var p in profiles)
        {
            if (matcher.Unmatchable(p) is null && matcher.BlockText(p) is not null)
            {
                latest[(p.Source, p.SourceId)] = p;
            }
            else
            {
                unmatchable++;
            }
        }

        var matchable = latest.Values.ToList();
        if (matchable.Count == 0)
        {
            return new DedupBatchResult { Unmatchable = unmatchable };
        }

        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await using (tx.ConfigureAwait(false))
            {
                var ids = await UpsertAsync(conn, tx, matcher, matchable, cancellationToken).ConfigureAwait(false);
                var incoming = new Dictionary<long, (MatchProfile Profile, long Canonical)>();
                for (var i = 0; i < matchable.Count; i++)
                {
                    incoming[ids[i].Id] = (matchable[i], ids[i].Canonical);
                }

                var (rejected, settled) = await LinkStateAsync(conn, tx, incoming.Keys.ToArray(), cancellationToken).ConfigureAwait(false);
                var candidates = await CandidatesAsync(conn, tx, matcher, incoming, cancellationToken).ConfigureAwait(false);

                var links = new List<(long Record, long Target, double Score, string Reason, string Status, long OldCanonical, long NewCanonical)>();
                long compared = 0;
                foreach (var (id, (profile, canonical)) in incoming)
                {
                    if (settled.Contains(id) || !candidates.TryGetValue(id, out var list))
                    {
                        continue;
                    }

                    (long Target, long Canonical, MatchScore Score)? best = null;
                    foreach (var c in list)
                    {
                        if (rejected.Contains((id, c.Id)) || rejected.Contains((c.Id, id)))
                        {
                            continue;
                        }

                        compared++;
                        var score = matcher.Score(profile, c.Profile);
                        if (score.Decision != MatchDecision.None && (best is null || score.Total > best.Value.Score.Total))
                        {
                            best = (c.Id, c.Canonical, score);
                        }
                    }

                    if (best is not { } b || b.Canonical == canonical)
                    {
                        continue;
                    }

                    var status = policy.Kind == DedupPolicyKind.ReportOnly ? "reported"
                        : b.Score.Decision == MatchDecision.Link ? "linked"
                        : "review";
                    links.Add((id, b.Target, b.Score.Total, b.Score.Explain(), status, canonical, b.Canonical));
                }

                var (linked, review) = await WriteLinksAsync(conn, tx, matcher.RecordType, links, runId, cancellationToken).ConfigureAwait(false);
                long merged = 0, conflicts = 0;
                if (policy.Kind == DedupPolicyKind.Merge && linked.Count > 0)
                {
                    (merged, conflicts) = await MergeAsync(conn, tx, matcher, policy, linked.Select(l => l.NewCanonical).Distinct().ToArray(), cancellationToken).ConfigureAwait(false);
                }

                if (dryRun)
                {
                    await tx.RollbackAsync(cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                }

                return new DedupBatchResult { Linked = linked.Count, ForReview = review, Unmatchable = unmatchable, Compared = compared, Merged = merged, Conflicts = conflicts };
            }
        }
    }

    /// <summary>
    /// Adds the rows of an existing table to the dedup records in one statement, normalizing the search text in
    /// SQL with <c>unaccent</c> (<c>dedup_fold</c>): for records already in the database before dedup was set up.
    /// The matcher's fields map to columns of the table (text or timestamptz; geo fields are left empty).
    /// </summary>
    /// <param name="matcher">The matcher.</param>
    /// <param name="table">The schema and name of the table.</param>
    /// <param name="sourceColumn">The column holding the source name.</param>
    /// <param name="sourceIdColumn">The column holding the record's identifier in its source.</param>
    /// <param name="fieldColumns">The column of each matcher field, by field name; fields not listed are left empty.</param>
    /// <param name="cancellationToken">Cancels the statement.</param>
    /// <returns>The rows added or refreshed.</returns>
    /// <exception cref="ArgumentException">An identifier is invalid or a field is unknown.</exception>
    public async Task<long> IndexTableAsync(RecordMatcher matcher, (string Schema, string Name) table, string sourceColumn, string sourceIdColumn, IReadOnlyDictionary<string, string> fieldColumns, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(matcher);
        ArgumentNullException.ThrowIfNull(fieldColumns);
        var textField = matcher.BlockTextField ?? throw new ArgumentException($"Matcher '{matcher.RecordType}' has no text field.", nameof(matcher));
        foreach (var name in fieldColumns.Keys)
        {
            if (!matcher.Fields.Any(f => f.Name == name))
            {
                throw new ArgumentException($"Matcher '{matcher.RecordType}' has no field '{name}'.", nameof(fieldColumns));
            }
        }

        string Col(string name) => "t." + PgIdentifier.Quote(name, "column name");
        var profile = string.Join(", ", matcher.Fields.Select(f =>
            !fieldColumns.TryGetValue(f.Name, out var c) || f.Kind == MatchFieldKind.Geo ? "NULL::text"
            : f.Kind == MatchFieldKind.DateTime ? $"to_char({Col(c)} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
            : $"{Col(c)}::text"));
        var text = fieldColumns.TryGetValue(textField.Name, out var tc) ? Col(tc) : throw new ArgumentException($"The search field '{textField.Name}' needs a column.", nameof(fieldColumns));
        var time = matcher.BlockTimeField is { } tf && fieldColumns.TryGetValue(tf.Name, out var tcol) ? Col(tcol) : "NULL::timestamptz";
        var sql = $"""
            INSERT INTO {_schema}.dedup_records (record_type, source, source_id, match_text, match_time, profile)
            SELECT $1, {Col(sourceColumn)}::text, {Col(sourceIdColumn)}::text, {_schema}.dedup_fold({text}, $2), {time}, jsonb_build_array({profile})
            FROM {PgIdentifier.Qualify(table.Schema, table.Name)} t
            WHERE {_schema}.dedup_fold({text}, $2) <> ''
            ON CONFLICT (record_type, source, source_id) DO UPDATE
                SET match_text = EXCLUDED.match_text, match_time = EXCLUDED.match_time, profile = EXCLUDED.profile, updated_at = now()
            """;
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _database.DataSource.CreateCommand(sql);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.CommandTimeout = 0;
            cmd.Parameters.AddWithValue(matcher.RecordType);
            cmd.Parameters.AddWithValue(StopWordPattern(matcher.Normalizer));
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Normalizes a text in SQL (<c>dedup_fold</c>, built on <c>unaccent</c>) with a normalizer's stop words.</summary>
    /// <param name="normalizer">The normalizer whose stop words to remove.</param>
    /// <param name="text">The text.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>The folded text.</returns>
    public async Task<string> FoldInDatabaseAsync(MatchKeyNormalizer normalizer, string text, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(normalizer);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var cmd = _database.DataSource.CreateCommand($"SELECT {_schema}.dedup_fold($1, $2)");
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(text);
            cmd.Parameters.AddWithValue(StopWordPattern(normalizer));
            return (string)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    /// <summary>The regular expression that removes a normalizer's stop words from a space-padded folded text.</summary>
    /// <param name="normalizer">The normalizer.</param>
    /// <returns>The pattern (stop words are folded letters and digits only), or empty when there are none.</returns>
    internal static string StopWordPattern(MatchKeyNormalizer normalizer)
    {
        var words = normalizer.StopWords.Where(w => w.All(char.IsAsciiLetterOrDigit)).ToList();
        return words.Count == 0 ? string.Empty : $" (?:{string.Join('|', words)})(?= )";
    }

    private async Task<List<(long Id, long Canonical)>> UpsertAsync(NpgsqlConnection conn, NpgsqlTransaction tx, RecordMatcher matcher, List<MatchProfile> profiles, CancellationToken cancellationToken)
    {
        var sql = $"""
            INSERT INTO {_schema}.dedup_records AS r (record_type, source, source_id, match_text, match_time, profile)
            SELECT $1, u.source, u.source_id, u.match_text, u.match_time, u.profile::jsonb
            FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[]) WITH ORDINALITY AS u(source, source_id, match_text, match_time, profile, n)
            ORDER BY u.n
            ON CONFLICT (record_type, source, source_id) DO UPDATE
                SET match_text = EXCLUDED.match_text, match_time = EXCLUDED.match_time, profile = EXCLUDED.profile, updated_at = now()
            RETURNING r.source, r.source_id, r.id, r.canonical_id
            """;
        var cmd = new NpgsqlCommand(sql, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(matcher.RecordType);
            cmd.Parameters.AddWithValue(profiles.Select(p => p.Source).ToArray());
            cmd.Parameters.AddWithValue(profiles.Select(p => p.SourceId).ToArray());
            cmd.Parameters.AddWithValue(profiles.Select(p => matcher.BlockText(p)!).ToArray());
            cmd.Parameters.Add(new NpgsqlParameter { Value = profiles.Select(p => matcher.BlockTime(p) is { } t ? (object)t.ToUniversalTime() : DBNull.Value).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            cmd.Parameters.AddWithValue(profiles.Select(p => JsonSerializer.Serialize(matcher.Encode(p))).ToArray());
            var byKey = new Dictionary<(string, string), (long, long)>();
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    byKey[(reader.GetString(0), reader.GetString(1))] = (reader.GetInt64(2), reader.GetInt64(3));
                }
            }

            return profiles.Select(p => byKey[(p.Source, p.SourceId)]).ToList();
        }
    }

    private async Task<(HashSet<(long, long)> Rejected, HashSet<long> Settled)> LinkStateAsync(NpgsqlConnection conn, NpgsqlTransaction tx, long[] ids, CancellationToken cancellationToken)
    {
        var rejected = new HashSet<(long, long)>();
        var settled = new HashSet<long>();
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

    private async Task<Dictionary<long, List<(long Id, long Canonical, MatchProfile Profile)>>> CandidatesAsync(NpgsqlConnection conn, NpgsqlTransaction tx, RecordMatcher matcher, Dictionary<long, (MatchProfile Profile, long Canonical)> incoming, CancellationToken cancellationToken)
    {
        var title = matcher.BlockTextField!;
        var threshold = Math.Clamp(title.MinSimilarity > 0 ? title.MinSimilarity : 0.3, 0.1, 0.3);
        var tolerance = matcher.BlockTimeField?.Tolerance ?? TimeSpan.Zero;
        var timed = matcher.BlockTimeField is not null;

        // With a time field, the start-time window is the block: the btree (record_type, match_time) range scan
        // yields the few records of the window and the trigram similarity is computed on them only. The GIN
        // index is not offered to the planner there (similarity() instead of %, same threshold, same result):
        // on titles sharing common words it returns a large share of the table for every incoming record, and
        // a BitmapAnd with the time range then costs far more than scoring the window. Without a time field the
        // trigram GIN index (%) is the block.
        var filter = timed
            ? "AND r.match_time BETWEEN i.match_time - $6::interval AND i.match_time + $6::interval AND similarity(r.match_text, i.match_text) >= $7::float8"
            : "AND r.match_text % i.match_text";
        var sql = $"""
            SELECT i.id, c.id, c.canonical_id, c.source, c.source_id, c.profile::text
            FROM unnest($1::bigint[], $2::text[], $3::text[], $4::timestamptz[]) AS i(id, source, match_text, match_time)
            CROSS JOIN LATERAL (
                SELECT r.id, r.canonical_id, r.source, r.source_id, r.profile
                FROM {_schema}.dedup_records r
                WHERE r.record_type = $5 AND r.source <> i.source
                  {filter}
                ORDER BY similarity(r.match_text, i.match_text) DESC, r.id
                LIMIT {CandidatesPerRecord.ToString(CultureInfo.InvariantCulture)}) c
            """;
        var result = new Dictionary<long, List<(long, long, MatchProfile)>>();
        // JIT compilation costs a few hundred milliseconds a statement and buys nothing on these index lookups.
        var set = new NpgsqlCommand("SELECT set_config('pg_trgm.similarity_threshold', $1, true), set_config('jit', 'off', true)", conn, tx);
        await using (set.ConfigureAwait(false))
        {
            set.Parameters.AddWithValue(threshold.ToString(CultureInfo.InvariantCulture));
            await set.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var cmd = new NpgsqlCommand(sql, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            var entries = incoming.ToList();
            cmd.Parameters.AddWithValue(entries.Select(e => e.Key).ToArray());
            cmd.Parameters.AddWithValue(entries.Select(e => e.Value.Profile.Source).ToArray());
            cmd.Parameters.AddWithValue(entries.Select(e => matcher.BlockText(e.Value.Profile)!).ToArray());
            cmd.Parameters.Add(new NpgsqlParameter { Value = entries.Select(e => matcher.BlockTime(e.Value.Profile) is { } t ? (object)t.ToUniversalTime() : DBNull.Value).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.TimestampTz });
            cmd.Parameters.AddWithValue(matcher.RecordType);
            if (timed)
            {
                cmd.Parameters.AddWithValue(tolerance);
                cmd.Parameters.AddWithValue(threshold);
            }

            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var id = reader.GetInt64(0);
                    var encoded = JsonSerializer.Deserialize<string?[]>(reader.GetString(5)) ?? [];
                    var profile = matcher.Decode(reader.GetString(3), reader.GetString(4), encoded);
                    if (!result.TryGetValue(id, out var list))
                    {
                        result[id] = list = [];
                    }

                    list.Add((reader.GetInt64(1), reader.GetInt64(2), profile));
                }
            }
        }

        return result;
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
