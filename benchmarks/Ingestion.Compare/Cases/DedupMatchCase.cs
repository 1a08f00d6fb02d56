using System.Globalization;
using Ingestion.Compare.Harness;
using Ingestion.Dedup;
using Ingestion.Postgres.Dedup;
using Ingestion.Postgres.Hosting;
using Microsoft.Extensions.Options;

namespace Ingestion.Compare.Cases;

/// <summary>
/// Cross-source dedup at scale: <c>--rows</c> existing events (a table indexed into <c>dedup_records</c> in SQL
/// with <c>unaccent</c>, not timed) and one tenth as many incoming events from another source, matched in
/// batches of 10,000 (trigram candidate search in PostgreSQL, scoring in .NET, links written). With the
/// default one million rows that is 100,000 incoming records against 1,000,000 existing ones. One incoming
/// record in ten is a planted duplicate (upper-cased title with a year suffix, 15 minutes later); the case
/// checks that each of them, and nothing else, was linked, to the record it was made from. Counts incoming records.
/// </summary>
public sealed class DedupMatchCase : CompareCase
{
    private const string Table = "bench_dedup_existing";
    private const string Schema = "bench_dedup";
    private const int BatchSize = 10_000;
    private static readonly DateTimeOffset Start = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly string[] Kinds = ["Festival", "Concert", "Spectacle", "Exposition", "Atelier", "Conférence", "Soirée", "Marché", "Visite", "Projection"];
    private static readonly string[] Themes = ["de jazz", "de musique", "du cirque", "des arts", "de danse", "de théâtre", "du cinéma", "de poésie", "de la science", "des enfants"];

    private readonly RecordMatcher<Event> _matcher = RecordMatcher.For<Event>("bench_events")
        .Text("title", e => e.Title, weight: 0.6, required: true, minSimilarity: 0.3)
        .DateTime("starts_at", e => e.StartsAt, TimeSpan.FromHours(2), weight: 0.25, required: true)
        .Text("place", e => e.Place, weight: 0.15)
        .Thresholds(link: 0.8, review: 0.6)
        .Build();

    private List<Event> _duplicates = [];
    private long _linked;
    private long _expected;

    /// <inheritdoc />
    public override string Name => "dedup_match";

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await TearDownAsync(context, cancellationToken);
        var existing = context.Rows;
        await context.ExecuteAsync($"""
            CREATE TABLE {Table} (source text, source_id text, title text, starts_at timestamptz, place text);
            INSERT INTO {Table}
            SELECT 'legacy', g::text,
                   (ARRAY['{string.Join("','", Kinds)}'])[1 + g % 10] || ' ' || (ARRAY['{string.Join("','", Themes)}'])[1 + (g / 10) % 10] || ' ' || initcap(substr(md5(g::text), 1, 6)),
                   timestamptz '2025-01-01 00:00+00' + g * interval '90 seconds',
                   'Salle ' || (g % 500)
            FROM generate_series(1, {existing.ToString(CultureInfo.InvariantCulture)}) g;
            """, cancellationToken);
        await using var database = Database(context);
        await new PostgresDedupStore(database).IndexTableAsync(_matcher, ("public", Table), "source", "source_id", new Dictionary<string, string> { ["title"] = "title", ["starts_at"] = "starts_at", ["place"] = "place" }, cancellationToken);
        await context.ExecuteAsync($"VACUUM ANALYZE {Schema}.dedup_records", cancellationToken);

        // One incoming record in ten is a variant of an existing one, spread over the whole table.
        var incoming = Math.Max(1, existing / 10);
        var step = Math.Max(1, existing / Math.Max(1, incoming / 10));
        _duplicates = [];
        await using var cmd = context.DataSource.CreateCommand($"SELECT source_id, title, starts_at, place FROM {Table} WHERE source_id::bigint % $1 = 0 ORDER BY source_id::bigint LIMIT $2");
        cmd.Parameters.AddWithValue(step);
        cmd.Parameters.AddWithValue(incoming / 10);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            _duplicates.Add(new Event(
                "dup-" + reader.GetString(0),
                reader.GetString(1).ToUpperInvariant() + " - 2026",
                reader.GetFieldValue<DateTimeOffset>(2).AddMinutes(15),
                reader.GetString(3)));
        }

        _expected = _duplicates.Count;
        if (!context.IsWarmUp)
        {
            context.Note($"dedup_match: {incoming} incoming records ({_duplicates.Count} planted duplicates) against {existing} existing, batches of {BatchSize}");
        }
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var incoming = Math.Max(1, context.Rows / 10);
        await using var database = Database(context);
        var store = new PostgresDedupStore(database);
        var span = TimeSpan.FromSeconds(90 * context.Rows);
        var batch = new List<MatchProfile>(BatchSize);
        long count = 0, linked = 0;
        var dup = 0;
        for (long i = 0; i < incoming; i++)
        {
            Event e;
            if (i % 10 == 0 && dup < _duplicates.Count)
            {
                e = _duplicates[dup++];
            }
            else
            {
                var h = Mix((ulong)i);
                e = new Event(
                    "new-" + i.ToString(CultureInfo.InvariantCulture),
                    $"{Kinds[h % 10]} {Themes[(h / 10) % 10]} Q{(h >> 20) % 1_000_000:x5}",
                    Start + TimeSpan.FromSeconds((double)(h % (ulong)Math.Max(1, span.TotalSeconds))),
                    "Salle " + ((h >> 8) % 500).ToString(CultureInfo.InvariantCulture));
            }

            batch.Add(_matcher.Profile("ics", e.Id, e));
            if (batch.Count == BatchSize)
            {
                linked += (await store.MatchBatchAsync(_matcher, DedupPolicy.Link, batch, null, false, cancellationToken)).Linked;
                count += batch.Count;
                batch.Clear();
            }
        }

        if (batch.Count > 0)
        {
            linked += (await store.MatchBatchAsync(_matcher, DedupPolicy.Link, batch, null, false, cancellationToken)).Linked;
            count += batch.Count;
        }

        _linked = linked;
        return count;
    }

    /// <inheritdoc />
    public override async Task VerifyAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        // Every planted duplicate is linked to the very record it was made from, and nothing else is linked.
        var right = await context.ScalarAsync<long>($"SELECT count(*) FROM {Schema}.record_links l JOIN {Schema}.dedup_records r ON r.id = l.record_id JOIN {Schema}.dedup_records t ON t.id = l.target_id WHERE l.status = 'linked' AND r.source_id = 'dup-' || t.source_id", cancellationToken);
        var wrong = await context.ScalarAsync<long>($"SELECT count(*) FROM {Schema}.record_links l JOIN {Schema}.dedup_records r ON r.id = l.record_id JOIN {Schema}.dedup_records t ON t.id = l.target_id WHERE l.status = 'linked' AND r.source_id <> 'dup-' || t.source_id", cancellationToken);
        if (_linked != _expected || right != _expected || wrong != 0)
        {
            throw new InvalidOperationException($"dedup_match linked {_linked} records, {right} of them to the record they were made from and {wrong} wrongly; expected exactly the {_expected} planted duplicates.");
        }

        if (!context.IsWarmUp)
        {
            context.Note($"dedup_match: linked {_linked} of {_expected} planted duplicates, {wrong} other links");
        }
    }

    /// <inheritdoc />
    public override async Task TearDownAsync(CaseContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        await context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}; DROP SCHEMA IF EXISTS {Schema} CASCADE", cancellationToken);
    }

    private static IngestionDatabase Database(CaseContext context) =>
        new(Options.Create(new PostgresIngestionOptions { ConnectionString = context.ConnectionString, Schema = Schema }), [.. DedupMigrations.All]);

    private static ulong Mix(ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return x ^ (x >> 31);
    }

    /// <summary>An event of the benchmark.</summary>
    /// <param name="Id">The identifier in its source.</param>
    /// <param name="Title">The title.</param>
    /// <param name="StartsAt">The start.</param>
    /// <param name="Place">The place.</param>
    public sealed record Event(string Id, string Title, DateTimeOffset StartsAt, string Place);
}
