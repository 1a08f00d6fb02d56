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

    /// <summary>Blocks read only up to their first 1,000 records (a word and a place shared by more records than that); a large count means the blocking is too coarse for the data.</summary>
    public long CutBlocks { get; init; }

    /// <summary>The sums of two results (the unmatchable records included).</summary>
    /// <param name="other">The other result.</param>
    /// <returns>The sums.</returns>
    public DedupBatchResult Add(DedupBatchResult other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return new DedupBatchResult
        {
            Linked = Linked + other.Linked,
            ForReview = ForReview + other.ForReview,
            Unmatchable = Unmatchable + other.Unmatchable,
            Compared = Compared + other.Compared,
            Merged = Merged + other.Merged,
            Conflicts = Conflicts + other.Conflicts,
            CutBlocks = CutBlocks + other.CutBlocks,
        };
    }
}

/// <summary>
/// Cross-source duplicate detection in PostgreSQL. Each record under dedup gets a row in <c>dedup_records</c>
/// (normalized search text and time, encoded profile, canonical record) and one row per blocking key in
/// <c>dedup_blocks</c> (see <see cref="MatchBlocking"/>: words of the name combined with the grid cell of the place,
/// the time bucket and exact codes). The candidates of a whole batch come from one query: its distinct probe keys
/// joined against <c>dedup_blocks</c>, each an index probe of a btree that stays usable however the table grows. Every
/// candidate is scored in .NET by the <see cref="RecordMatcher"/> on all its fields and the best score decides, so
/// every link carries its explanation; links and review candidates go to <c>record_links</c>. A pair once rejected
/// never links again. A statement that times out fails with an <see cref="IngestionException"/> naming it (not a
/// transient error: the same statement would time out again). Thread-safe.
/// </summary>
public sealed class PostgresDedupStore
{
    private const int PendingChunk = 10_000;
    private const long AnalyzeFloor = 20_000;
    private readonly IngestionDatabase _database;
    private readonly string _schema;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<(string, string), bool> _knownSources = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _blocked = new(StringComparer.Ordinal);
    private long _staged;
    private long _nextAnalyze = -1;
    private readonly DedupMatching _matching;

    /// <summary>Creates the store.</summary>
    /// <param name="database">The library's database.</param>
    public PostgresDedupStore(IngestionDatabase database)
    {
        ArgumentNullException.ThrowIfNull(database);
        _database = database;
        _schema = PgIdentifier.Quote(database.Schema, "Ingestion:Postgres:Schema");
        _matching = new DedupMatching(_schema);
    }

    /// <summary>Moves whole groups to other canonical records (for reviews).</summary>
    internal Task MoveCanonicalAsync(NpgsqlConnection conn, NpgsqlTransaction tx, string recordType, IReadOnlyList<(long Old, long New)> moves, CancellationToken cancellationToken) =>
        _matching.MoveCanonicalAsync(conn, tx, recordType, moves, cancellationToken);

    /// <summary>
    /// Finds the duplicates of a batch of records among other sources' records, and links or reports them per the
    /// policy, in one transaction. When the records all come from one source, their candidates are queried on a second
    /// connection of the pool while the records are written (the batch then holds two connections; with a pool of one,
    /// or none free within a second, the query follows the writing on the batch's connection).
    /// </summary>
    /// <param name="matcher">The matcher of the record type.</param>
    /// <param name="policy">The policy of the source set.</param>
    /// <param name="profiles">The batch's records.</param>
    /// <param name="runId">The run, recorded on the links.</param>
    /// <param name="dryRun">Compute and count, but commit nothing.</param>
    /// <param name="cancellationToken">Cancels the batch; nothing of it is committed.</param>
    /// <returns>The counts.</returns>
    /// <exception cref="IngestionException">A statement timed out; the message names it (not retried as a transient error).</exception>
    public async Task<DedupBatchResult> MatchBatchAsync(RecordMatcher matcher, DedupPolicy policy, IReadOnlyList<MatchProfile> profiles, Guid? runId, bool dryRun, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(matcher);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(profiles);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var (matchable, unmatchable) = Matchable(matcher, profiles);
        if (matchable.Count == 0)
        {
            return new DedupBatchResult { Unmatchable = unmatchable };
        }

        await PrepareAsync(matcher, matchable, cancellationToken).ConfigureAwait(false);
        var step = $"staging {matchable.Count} records";
        DedupBatchResult result;
        try
        {
            var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (conn.ConfigureAwait(false))
            {
                var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (tx.ConfigureAwait(false))
                {
                    // Matched in this transaction: staged as matched (a failure rolls both back), no second write of each record.
                    if (DedupMatching.MayQueryAhead(_database.DataSource, matchable))
                    {
                        result = await _matching.StageAndMatchAsync(_database.DataSource, conn, tx, matcher, policy, matchable, runId, s => step = s, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        // The probe keys are computed on other cores while the records are written.
                        var early = _matching.StartProbeKeys(matcher, matchable);
                        var staged = await DedupBlocksSql.StageAsync(conn, tx, _schema, matcher, matchable, matched: true, cancellationToken).ConfigureAwait(false);
                        var ids = staged.Select(s => s.Id).ToArray();
                        var known = new Dictionary<long, MatchProfile>(ids.Length);
                        for (var i = 0; i < ids.Length; i++)
                        {
                            known[ids[i]] = matchable[i];
                        }

                        result = await _matching.MatchAsync(conn, tx, matcher, policy, ids, known, runId, staged, early, s => step = s, cancellationToken).ConfigureAwait(false);
                    }

                    step = "committing";
                    if (dryRun)
                    {
                        await tx.RollbackAsync(cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (Exception e) when (DedupTimeouts.IsTimeout(e, cancellationToken))
        {
            throw DedupTimeouts.Describe(e, matcher.RecordType, step);
        }

        // On a connection of its own once the batch's is back in the pool (a pool of one connection is enough).
        if (!dryRun)
        {
            await AnalyzeWhenGrownAsync(matchable.Count, cancellationToken).ConfigureAwait(false);
        }

        return result with { Unmatchable = unmatchable };
    }

    /// <summary>
    /// Files a batch's records as pending (committed at once, before the batch itself is written): if the run fails before
    /// <see cref="MatchPendingAsync"/> commits, they stay pending and are matched by the source's next batch or completion,
    /// so no record is left unmatched by a crash or a failure.
    /// </summary>
    /// <param name="matcher">The matcher of the record type.</param>
    /// <param name="profiles">The batch's records.</param>
    /// <param name="cancellationToken">Cancels the staging; nothing of it is committed.</param>
    /// <returns>How many records cannot be matched (a required field is empty); they are not stored.</returns>
    /// <exception cref="IngestionException">A statement timed out; the message names it.</exception>
    public async Task<long> StagePendingAsync(RecordMatcher matcher, IReadOnlyList<MatchProfile> profiles, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(matcher);
        ArgumentNullException.ThrowIfNull(profiles);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var (matchable, unmatchable) = Matchable(matcher, profiles);
        if (matchable.Count == 0)
        {
            return unmatchable;
        }

        await PrepareAsync(matcher, matchable, cancellationToken).ConfigureAwait(false);
        try
        {
            var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (conn.ConfigureAwait(false))
            {
                var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                await using (tx.ConfigureAwait(false))
                {
                    await DedupBlocksSql.StageAsync(conn, tx, _schema, matcher, matchable, matched: false, cancellationToken).ConfigureAwait(false);
                    await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (DedupTimeouts.IsTimeout(e, cancellationToken))
        {
            throw DedupTimeouts.Describe(e, matcher.RecordType, $"staging {matchable.Count} records of '{matchable[0].Source}'");
        }

        await AnalyzeWhenGrownAsync(matchable.Count, cancellationToken).ConfigureAwait(false);
        return unmatchable;
    }

    /// <summary>Matches every pending record of a source (staged by <see cref="StagePendingAsync"/>, this run's or a failed run's), in chunks that each commit with their links.</summary>
    /// <param name="matcher">The matcher of the record type.</param>
    /// <param name="policy">The policy of the source set.</param>
    /// <param name="source">The source.</param>
    /// <param name="known">Profiles already in memory (the current batch), so they are not decoded again; may be empty.</param>
    /// <param name="runId">The run, recorded on the links.</param>
    /// <param name="cancellationToken">Cancels the matching; the chunk under way stays pending.</param>
    /// <returns>The counts.</returns>
    /// <exception cref="IngestionException">A statement timed out; the message names it.</exception>
    public async Task<DedupBatchResult> MatchPendingAsync(RecordMatcher matcher, DedupPolicy policy, string source, IReadOnlyList<MatchProfile> known, Guid? runId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(matcher);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(known);
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        var bySourceId = new Dictionary<string, MatchProfile>(StringComparer.Ordinal);
        foreach (var p in known)
        {
            bySourceId[p.SourceId] = p;
        }

        var total = new DedupBatchResult();
        var step = $"reading the pending records of '{source}'";
        try
        {
            var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (conn.ConfigureAwait(false))
            {
                while (true)
                {
                    var tx = await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                    await using (tx.ConfigureAwait(false))
                    {
                        var ids = new List<long>();
                        var profiles = new Dictionary<long, MatchProfile>();
                        var read = new NpgsqlCommand($"SELECT id, source_id, profile::text FROM {_schema}.dedup_records WHERE record_type = $1 AND source = $2 AND NOT matched ORDER BY id LIMIT {PendingChunk.ToString(CultureInfo.InvariantCulture)}", conn, tx);
                        await using (read.ConfigureAwait(false))
                        {
                            read.Parameters.AddWithValue(matcher.RecordType);
                            read.Parameters.AddWithValue(source);
                            var reader = await read.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                            await using (reader.ConfigureAwait(false))
                            {
                                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                                {
                                    var id = reader.GetInt64(0);
                                    var sourceId = reader.GetString(1);
                                    ids.Add(id);
                                    profiles[id] = bySourceId.TryGetValue(sourceId, out var p) ? p
                                        : matcher.Decode(source, sourceId, JsonSerializer.Deserialize<string?[]>(reader.GetString(2)) ?? []);
                                }
                            }
                        }

                        if (ids.Count == 0)
                        {
                            return total;
                        }

                        var r = await _matching.MatchAsync(conn, tx, matcher, policy, [.. ids], profiles, runId, staged: null, early: null, s => step = s, cancellationToken).ConfigureAwait(false);
                        await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
                        total = total.Add(r);
                    }
                }
            }
        }
        catch (Exception e) when (DedupTimeouts.IsTimeout(e, cancellationToken))
        {
            throw DedupTimeouts.Describe(e, matcher.RecordType, step);
        }
    }

    private static (List<MatchProfile> Matchable, long Unmatchable) Matchable(RecordMatcher matcher, IReadOnlyList<MatchProfile> profiles)
    {
        // The last record of a source and id wins within a batch.
        var latest = new Dictionary<(string, string), MatchProfile>();
        long unmatchable = 0;
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

        return (latest.Values.ToList(), unmatchable);
    }

    /// <summary>Migrates, records the sources of the type and gives records stored without keys their keys (once per store).</summary>
    private async Task PrepareAsync(RecordMatcher matcher, List<MatchProfile> profiles, CancellationToken cancellationToken)
    {
        var fresh = profiles.Select(p => p.Source).Distinct(StringComparer.Ordinal).Where(s => !_knownSources.ContainsKey((matcher.RecordType, s))).ToArray();
        var unblocked = !_blocked.ContainsKey(matcher.RecordType);
        if (fresh.Length == 0 && !unblocked)
        {
            return;
        }

        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            if (fresh.Length > 0)
            {
                var cmd = new NpgsqlCommand($"INSERT INTO {_schema}.dedup_sources (record_type, source, unplaced) SELECT $1, unnest($2::text[]), false ON CONFLICT DO NOTHING", conn);
                await using (cmd.ConfigureAwait(false))
                {
                    cmd.Parameters.AddWithValue(matcher.RecordType);
                    cmd.Parameters.AddWithValue(fresh);
                    await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                }

                foreach (var s in fresh)
                {
                    _knownSources.TryAdd((matcher.RecordType, s), true);
                }
            }

            if (unblocked)
            {
                if (await DedupBlocksSql.BackfillAsync(conn, _schema, matcher, cancellationToken).ConfigureAwait(false) > 0)
                {
                    await AnalyzeAsync(conn, cancellationToken).ConfigureAwait(false);
                }

                _blocked.TryAdd(matcher.RecordType, true);
            }
        }
    }

    /// <summary>
    /// Refreshes the planner's statistics of the dedup tables when the records this store staged reach the size the
    /// records table had when the store first staged (at least 20,000), then each time they double again: a first load
    /// is analyzed at 20,000, 40,000, 80,000... records; 100,000 records matched against a million analyze nothing.
    /// </summary>
    private async Task AnalyzeWhenGrownAsync(long staged, CancellationToken cancellationToken)
    {
        if (Interlocked.Read(ref _nextAnalyze) < 0)
        {
            var size = await RecordsEstimateAsync(cancellationToken).ConfigureAwait(false);
            Interlocked.CompareExchange(ref _nextAnalyze, Math.Max(AnalyzeFloor, size), -1);
        }

        var total = Interlocked.Add(ref _staged, staged);
        var next = Interlocked.Read(ref _nextAnalyze);
        if (total < next || Interlocked.CompareExchange(ref _nextAnalyze, next * 2, next) != next)
        {
            return;
        }

        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            await AnalyzeAsync(conn, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The planner's estimate of the rows of <c>dedup_records</c> (0 before its first analyze).</summary>
    private async Task<long> RecordsEstimateAsync(CancellationToken cancellationToken)
    {
        var cmd = _database.DataSource.CreateCommand($"SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = '{_schema}.dedup_records'::regclass");
        await using (cmd.ConfigureAwait(false))
        {
            return (long)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    private async Task AnalyzeAsync(NpgsqlConnection conn, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand($"ANALYZE {_schema}.dedup_records, {_schema}.dedup_blocks", conn) { CommandTimeout = 0 };
        await using (cmd.ConfigureAwait(false))
        {
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Adds the rows of an existing table to the dedup records in one statement (filtering out rows whose search text
    /// folds to nothing in SQL with <c>unaccent</c>, <c>dedup_fold</c>), then gives them their blocking keys in .NET, in
    /// chunks: for records already in the database before dedup was set up. They are not matched against each other.
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
                SET match_text = EXCLUDED.match_text, match_time = EXCLUDED.match_time, profile = EXCLUDED.profile, block_keys = NULL, updated_at = now()
            """;
        await _database.EnsureMigratedAsync(cancellationToken).ConfigureAwait(false);
        long rows;
        var cmd = _database.DataSource.CreateCommand(sql);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.CommandTimeout = 0;
            cmd.Parameters.AddWithValue(matcher.RecordType);
            cmd.Parameters.AddWithValue(StopWordPattern(matcher.Normalizer));
            rows = await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        // The rows get their blocking keys (and the .NET search text, abbreviations expanded) from their profiles, and
        // their sources become candidates' sources. A refreshed row's old blocks stay behind: they only add candidates.
        var conn = await _database.DataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            var sources = new NpgsqlCommand($"INSERT INTO {_schema}.dedup_sources SELECT DISTINCT $1, {Col(sourceColumn)}::text FROM {PgIdentifier.Qualify(table.Schema, table.Name)} t ON CONFLICT DO NOTHING", conn) { CommandTimeout = 0 };
            await using (sources.ConfigureAwait(false))
            {
                sources.Parameters.AddWithValue(matcher.RecordType);
                await sources.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await DedupBlocksSql.BackfillAsync(conn, _schema, matcher, cancellationToken).ConfigureAwait(false);
            await AnalyzeAsync(conn, cancellationToken).ConfigureAwait(false);
        }

        return rows;
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

}
