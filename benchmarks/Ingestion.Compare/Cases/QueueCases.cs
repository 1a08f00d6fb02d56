using System.Diagnostics;
using Ingestion.Compare.Harness;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Queue;
using Ingestion.Queue;
using Microsoft.Extensions.Options;

namespace Ingestion.Compare.Cases;

/// <summary>
/// Shared set-up of the work-queue cases: a <see cref="PostgresWorkQueue"/> over its own schema of the
/// benchmark database (dropped at tear-down), durable commits (<c>synchronous_commit</c> as the server has it),
/// keys shaped like storage paths, and an absolute goal noted after the case's line.
/// </summary>
public abstract class QueueCaseBase : CompareCase
{
    /// <summary>The schema of the queue tables.</summary>
    protected const string Schema = "bench_queue";

    /// <summary>The queue name.</summary>
    protected const string Queue = "bench";

    private IngestionDatabase? _database;
    private PostgresWorkQueue? _store;
    private long _count;
    private TimeSpan _elapsed;

    /// <inheritdoc />
    public override string Unit => "items";

    /// <summary>The store (after set-up).</summary>
    protected PostgresWorkQueue Store => _store ?? throw new InvalidOperationException("The case is not set up.");

    /// <summary>The goal in items per second (0 when the case has none).</summary>
    protected virtual double GoalPerSecond => 0;

    /// <summary>How many items the case runs with for <paramref name="rows"/> requested rows.</summary>
    /// <param name="rows">The rows asked for.</param>
    /// <returns>The item count.</returns>
    protected abstract long ItemCount(long rows);

    /// <summary>The key of item <paramref name="i"/>.</summary>
    /// <param name="i">The index.</param>
    /// <returns>A path-like key.</returns>
    protected static string Key(long i) => $"bucket/legi/{i % 997:D3}/JORFTEXT{i:D12}.xml";

    /// <summary>Items 0..n-1 as requests.</summary>
    /// <param name="n">The count.</param>
    /// <returns>The requests.</returns>
    protected static async IAsyncEnumerable<WorkItemRequest> Requests(long n)
    {
        for (long i = 0; i < n; i++)
        {
            yield return new WorkItemRequest(Key(i));
        }

        await Task.CompletedTask;
    }

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        await context.ExecuteAsync($"DROP SCHEMA IF EXISTS {Schema} CASCADE", cancellationToken);
        _database = new IngestionDatabase(Options.Create(new PostgresIngestionOptions { ConnectionString = context.ConnectionString, Schema = Schema }), QueueMigrations.All);
        await _database.EnsureMigratedAsync(cancellationToken);
        _store = new PostgresWorkQueue(_database);
        _count = ItemCount(context.Rows);
        if (_count < ItemCount(long.MaxValue) && !context.IsWarmUp)
        {
            context.Note($"{Name} ran on {_count} items (--rows)");
        }

        await PrepareAsync(context, _count, cancellationToken);
    }

    /// <summary>Prepares the items (not timed).</summary>
    /// <param name="context">The context.</param>
    /// <param name="count">The item count.</param>
    /// <param name="cancellationToken">Cancels.</param>
    /// <returns>A task.</returns>
    protected virtual Task PrepareAsync(CaseContext context, long count, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    public sealed override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var n = await RunItemsAsync(_count, cancellationToken);
        _elapsed = clock.Elapsed;
        return n;
    }

    /// <summary>The timed work.</summary>
    /// <param name="count">The item count.</param>
    /// <param name="cancellationToken">Cancels.</param>
    /// <returns>Items processed.</returns>
    protected abstract Task<long> RunItemsAsync(long count, CancellationToken cancellationToken);

    /// <inheritdoc />
    public override async Task VerifyAsync(CaseContext context, CancellationToken cancellationToken)
    {
        await VerifyItemsAsync(context, _count, cancellationToken);
        if (GoalPerSecond > 0 && !context.IsWarmUp)
        {
            var rate = _count / _elapsed.TotalSeconds;
            context.Note($"goal {Name} >= {GoalPerSecond:0} items/s: {(rate >= GoalPerSecond ? "PASS" : "MISS")} ({rate:0} items/s)");
        }
    }

    /// <summary>Checks the outcome; throws when wrong.</summary>
    /// <param name="context">The context.</param>
    /// <param name="count">The item count.</param>
    /// <param name="cancellationToken">Cancels.</param>
    /// <returns>A task.</returns>
    protected abstract Task VerifyItemsAsync(CaseContext context, long count, CancellationToken cancellationToken);

    /// <summary>Throws unless the count query returns <paramref name="expected"/>.</summary>
    /// <param name="context">The context.</param>
    /// <param name="sql">A count query.</param>
    /// <param name="expected">The expected count.</param>
    /// <param name="cancellationToken">Cancels.</param>
    /// <returns>A task.</returns>
    protected static async Task ExpectAsync(CaseContext context, string sql, long expected, CancellationToken cancellationToken)
    {
        var actual = await context.ScalarAsync<long>(sql, cancellationToken);
        if (actual != expected)
        {
            throw new InvalidOperationException($"'{sql}' returned {actual}; expected {expected}.");
        }
    }

    /// <inheritdoc />
    public override async Task TearDownAsync(CaseContext context, CancellationToken cancellationToken)
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
        }

        if (_database is not null)
        {
            await _database.DisposeAsync();
        }

        await context.ExecuteAsync($"DROP SCHEMA IF EXISTS {Schema} CASCADE", cancellationToken);
    }
}

/// <summary>Enqueue one item per call (one durable commit each) from 8 concurrent producers.</summary>
public sealed class QueueEnqueueSingleCase : QueueCaseBase
{
    private const int Producers = 8;

    /// <inheritdoc />
    public override string Name => "queue_enqueue_single";

    /// <inheritdoc />
    protected override long ItemCount(long rows) => Math.Min(rows, 20_000);

    /// <inheritdoc />
    protected override async Task<long> RunItemsAsync(long count, CancellationToken cancellationToken)
    {
        var added = await Task.WhenAll(Enumerable.Range(0, Producers).Select(async p =>
        {
            long n = 0;
            for (long i = p; i < count; i += Producers)
            {
                n += await Store.EnqueueAsync(Queue, new WorkItemRequest(Key(i)), cancellationToken) ? 1 : 0;
            }

            return n;
        }));
        return added.Sum();
    }

    /// <inheritdoc />
    protected override Task VerifyItemsAsync(CaseContext context, long count, CancellationToken cancellationToken) =>
        ExpectAsync(context, $"SELECT count(*) FROM {Schema}.queue_items", count, cancellationToken);
}

/// <summary>Enqueue all items in one bulk call into a fresh queue (binary COPY straight into the queue table, chunk by chunk, in key order).</summary>
public sealed class QueueEnqueueBulkCase : QueueCaseBase
{
    /// <inheritdoc />
    public override string Name => "queue_enqueue_bulk";

    /// <inheritdoc />
    protected override double GoalPerSecond => 200_000;

    /// <inheritdoc />
    protected override long ItemCount(long rows) => Math.Min(rows, 1_000_000);

    /// <inheritdoc />
    protected override async Task<long> RunItemsAsync(long count, CancellationToken cancellationToken) =>
        (await Store.EnqueueManyAsync(Queue, Requests(count), cancellationToken)).Enqueued;

    /// <inheritdoc />
    protected override Task VerifyItemsAsync(CaseContext context, long count, CancellationToken cancellationToken) =>
        ExpectAsync(context, $"SELECT count(*) FROM {Schema}.queue_items WHERE state = 0", count, cancellationToken);
}

/// <summary>
/// The ceiling of bulk enqueue on this machine: a plain binary COPY of the same item rows (the columns the bulk path
/// sends, in the same order, or sorted by key) into a table with the queue's unique key and nothing else.
/// </summary>
/// <param name="sorted">Whether the rows arrive sorted by key (the order the bulk path inserts them in).</param>
public sealed class QueueCopyCeilingCase(bool sorted) : QueueCaseBase
{
    private const string Table = Schema + ".copy_pk";

    /// <inheritdoc />
    public override string Name => sorted ? "queue_copy_pk_sorted" : "queue_copy_pk";

    /// <inheritdoc />
    protected override long ItemCount(long rows) => Math.Min(rows, 1_000_000);

    private Npgsql.NpgsqlDataSource? _dataSource;
    private long[] _order = [];

    /// <inheritdoc />
    protected override async Task PrepareAsync(CaseContext context, long count, CancellationToken cancellationToken)
    {
        _dataSource = context.DataSource;
        _order = new long[count];
        for (long i = 0; i < count; i++)
        {
            _order[i] = i;
        }

        if (sorted)
        {
            Array.Sort(_order, (a, b) => string.CompareOrdinal(Key(a), Key(b)));
        }

        await context.ExecuteAsync($"""CREATE TABLE {Table} (queue_id int, key text COLLATE "C", payload text, priority int, run_after timestamptz, PRIMARY KEY (queue_id, key))""", cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task<long> RunItemsAsync(long count, CancellationToken cancellationToken)
    {
        var dataSource = _dataSource ?? throw new InvalidOperationException("The case is not set up.");
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var importer = await connection.BeginBinaryImportAsync($"COPY {Table} (queue_id, key, payload, priority, run_after) FROM STDIN (FORMAT BINARY)", cancellationToken);
        foreach (var i in _order)
        {
            importer.StartRow();
            importer.Write(1, NpgsqlTypes.NpgsqlDbType.Integer);
            importer.Write(Key(i), NpgsqlTypes.NpgsqlDbType.Text);
            importer.WriteNull();
            importer.Write(0, NpgsqlTypes.NpgsqlDbType.Integer);
            importer.WriteNull();
        }

        return (long)await importer.CompleteAsync(cancellationToken);
    }

    /// <inheritdoc />
    protected override Task VerifyItemsAsync(CaseContext context, long count, CancellationToken cancellationToken) =>
        ExpectAsync(context, $"SELECT count(*) FROM {Table}", count, cancellationToken);
}

/// <summary>
/// The ceiling of bulk enqueue as issue 19 words it: a plain binary COPY of the same items, in key order (the order the
/// bulk path inserts them in), into the queue's own <c>queue_items</c> table (its primary key, partial indexes and
/// fillfactor), with the columns the bulk path sends (queue id and key; the rest take their defaults). Only what
/// the bulk path adds beyond the table's own cost separates the two.
/// </summary>
/// <param name="chunked">
/// Whether the keys are sorted only within each run of 100,000 (as read): the order a bulk enqueue that streams its
/// input can send, without holding the whole input to sort it once.
/// </param>
public sealed class QueueCopyItemsCase(bool chunked) : QueueCaseBase
{
    /// <summary>The items a streaming bulk enqueue sorts at a time (its chunk).</summary>
    private const int Chunk = 100_000;

    private Npgsql.NpgsqlDataSource? _dataSource;
    private string[] _keys = [];
    private int _queueId;

    /// <inheritdoc />
    public override string Name => chunked ? "queue_copy_items_chunked" : "queue_copy_items";

    /// <inheritdoc />
    protected override long ItemCount(long rows) => Math.Min(rows, 1_000_000);

    /// <inheritdoc />
    protected override async Task PrepareAsync(CaseContext context, long count, CancellationToken cancellationToken)
    {
        _dataSource = context.DataSource;
        _keys = new string[count];
        for (long i = 0; i < count; i++)
        {
            _keys[i] = Key(i);
        }

        var window = chunked ? Chunk : _keys.Length;
        for (var start = 0; start < _keys.Length; start += window)
        {
            Array.Sort(_keys, start, Math.Min(window, _keys.Length - start), StringComparer.Ordinal);
        }

        _queueId = (int)await context.ScalarAsync<int>($"INSERT INTO {Schema}.queues (name) VALUES ('{Queue}') RETURNING id", cancellationToken);
    }

    /// <inheritdoc />
    protected override async Task<long> RunItemsAsync(long count, CancellationToken cancellationToken)
    {
        var dataSource = _dataSource ?? throw new InvalidOperationException("The case is not set up.");
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var importer = await connection.BeginBinaryImportAsync($"COPY {Schema}.queue_items (queue_id, key) FROM STDIN (FORMAT BINARY)", cancellationToken);
        foreach (var key in _keys)
        {
            importer.StartRow();
            importer.Write(_queueId, NpgsqlTypes.NpgsqlDbType.Integer);
            importer.Write(key, NpgsqlTypes.NpgsqlDbType.Text);
        }

        return (long)await importer.CompleteAsync(cancellationToken);
    }

    /// <inheritdoc />
    protected override Task VerifyItemsAsync(CaseContext context, long count, CancellationToken cancellationToken) =>
        ExpectAsync(context, $"SELECT count(*) FROM {Schema}.queue_items WHERE state = 0 AND queue_id = {_queueId}", count, cancellationToken);
}

/// <summary>
/// Claim and complete items: each round trip completes the worker's previous claim and claims the next
/// (one statement, one durable commit), with <see cref="Workers"/> workers at once.
/// </summary>
public abstract class QueueClaimCaseBase : QueueCaseBase
{
    /// <summary>Concurrent workers.</summary>
    protected virtual int Workers => 8;

    /// <summary>Items per claim.</summary>
    protected abstract int Batch { get; }

    /// <inheritdoc />
    protected override async Task PrepareAsync(CaseContext context, long count, CancellationToken cancellationToken) =>
        await Store.EnqueueManyAsync(Queue, Requests(count), cancellationToken);

    /// <inheritdoc />
    protected override async Task<long> RunItemsAsync(long count, CancellationToken cancellationToken)
    {
        var done = await Task.WhenAll(Enumerable.Range(0, Workers).Select(async w =>
        {
            var owner = $"bench-{w}";
            IReadOnlyCollection<WorkItemHandle> previous = [];
            long completed = 0;
            while (true)
            {
                var r = await Store.ClaimAsync(new ClaimRequest(Queue, owner, Batch, TimeSpan.FromMinutes(5)) { Complete = previous }, cancellationToken);
                completed += r.Completed;
                if (r.Items.Count == 0)
                {
                    return completed;
                }

                previous = r.Items.Select(i => i.Handle).ToArray();
            }
        }));
        return done.Sum();
    }

    /// <inheritdoc />
    protected override async Task VerifyItemsAsync(CaseContext context, long count, CancellationToken cancellationToken)
    {
        await ExpectAsync(context, $"SELECT count(*) FROM {Schema}.queue_done", count, cancellationToken);
        await ExpectAsync(context, $"SELECT count(*) FROM {Schema}.queue_items", 0, cancellationToken);
    }
}

/// <summary>Claim and complete one item at a time.</summary>
public sealed class QueueClaimSingleCase : QueueClaimCaseBase
{
    /// <inheritdoc />
    public override string Name => "queue_claim_single";

    /// <inheritdoc />
    protected override int Batch => 1;

    /// <inheritdoc />
    protected override double GoalPerSecond => 2_000;

    /// <inheritdoc />
    protected override long ItemCount(long rows) => Math.Min(rows, 30_000);
}

/// <summary>Claim and complete 100 items at a time.</summary>
public sealed class QueueClaimBatchedCase : QueueClaimCaseBase
{
    /// <inheritdoc />
    public override string Name => "queue_claim_batched";

    /// <inheritdoc />
    protected override int Batch => 100;

    /// <inheritdoc />
    protected override int Workers => 4;

    /// <inheritdoc />
    protected override double GoalPerSecond => 20_000;

    /// <inheritdoc />
    protected override long ItemCount(long rows) => Math.Min(rows, 300_000);
}

/// <summary>
/// Reconciliation of a storage listing of 1.4 million keys (the Légifrance bucket's size) with a queue that
/// knows them all but 1 in 50 (lost, e.g. by a TRUNCATE) and knows 1 in 1,000 keys storage no longer has.
/// The listing streams; the peak working set shows the client holds one batch, not the listing.
/// </summary>
public sealed class QueueReconcileCase : QueueCaseBase
{
    private ReconcileResult? _result;
    private long _heapAfter;

    /// <inheritdoc />
    public override string Name => "queue_reconcile";

    /// <inheritdoc />
    public override bool WarmsUp => false;

    /// <inheritdoc />
    protected override long ItemCount(long rows) => Math.Min(rows * 14 / 10, 1_400_000);

    private static bool InQueue(long i) => i % 50 != 0;

    private static bool InStorage(long i) => i % 1000 != 7;

    /// <inheritdoc />
    protected override async Task PrepareAsync(CaseContext context, long count, CancellationToken cancellationToken) =>
        await Store.EnqueueManyAsync(Queue, Filtered(count, InQueue), cancellationToken);

    private static async IAsyncEnumerable<WorkItemRequest> Filtered(long n, Func<long, bool> keep)
    {
        for (long i = 0; i < n; i++)
        {
            if (keep(i))
            {
                yield return new WorkItemRequest(Key(i));
            }
        }

        await Task.CompletedTask;
    }

    private static async IAsyncEnumerable<string> Listing(long n)
    {
        for (long i = 0; i < n; i++)
        {
            if (InStorage(i))
            {
                yield return Key(i);
            }
        }

        await Task.CompletedTask;
    }

    /// <inheritdoc />
    protected override async Task<long> RunItemsAsync(long count, CancellationToken cancellationToken)
    {
        _result = await Store.ReconcileAsync(Queue, Listing(count), new ReconcileOptions { BatchSize = 10_000, MaxReported = 100 }, cancellationToken);
        _heapAfter = GC.GetTotalMemory(forceFullCollection: false);
        return _result.StorageKeys;
    }

    /// <inheritdoc />
    protected override async Task VerifyItemsAsync(CaseContext context, long count, CancellationToken cancellationToken)
    {
        long storage = 0, missingFromQueue = 0, missingFromStorage = 0;
        for (long i = 0; i < count; i++)
        {
            storage += InStorage(i) ? 1 : 0;
            missingFromQueue += InStorage(i) && !InQueue(i) ? 1 : 0;
            missingFromStorage += InQueue(i) && !InStorage(i) ? 1 : 0;
        }

        var r = _result ?? throw new InvalidOperationException("The case did not run.");
        if ((r.StorageKeys, r.MissingFromQueue, r.Enqueued, r.MissingFromStorage) != (storage, missingFromQueue, missingFromQueue, missingFromStorage))
        {
            throw new InvalidOperationException($"Reconcile returned {r}; expected storage={storage} missing_from_queue={missingFromQueue} missing_from_storage={missingFromStorage}.");
        }

        context.Note($"{Name}: {r.StorageKeys} storage keys, {r.Enqueued} enqueued, {r.MissingFromStorage} missing from storage; managed heap after the run {_heapAfter / (1024 * 1024)} MB (one batch of 10,000 keys on the client)");
        await ExpectAsync(context, $"SELECT count(*) FROM {Schema}.queue_items", count - count / 50 + missingFromQueue, cancellationToken);
    }
}
