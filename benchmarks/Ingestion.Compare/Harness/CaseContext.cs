using Ingestion.Benchmarks.Data;
using Npgsql;

namespace Ingestion.Compare.Harness;

/// <summary>What a case gets from the harness: the options, the benchmark database, the shared CSV input and a place for notes.</summary>
public sealed class CaseContext
{
    private readonly Dictionary<long, Task<string>> _csvFiles = [];
    private readonly List<string> _notes = [];

    internal CaseContext(CompareOptions options, string connectionString, NpgsqlDataSource dataSource, string workDirectory)
    {
        Options = options;
        ConnectionString = connectionString;
        DataSource = dataSource;
        WorkDirectory = workDirectory;
    }

    /// <summary>A context for a warm-up pass: the same database and files, at most <paramref name="rows"/> rows.</summary>
    /// <param name="rows">The row cap.</param>
    /// <returns>The context.</returns>
    internal CaseContext WarmUp(long rows) => new(Options.CappedTo(rows), ConnectionString, DataSource, WorkDirectory) { IsWarmUp = true };

    /// <summary>
    /// The source options every "ours" case uses: the target <paramref name="table"/> created from the records, no
    /// retries or timeout (a failure must show, not be retried inside the timing), and the <c>--batch-size</c>
    /// option when given (else the library's default).
    /// </summary>
    /// <param name="table">The target table.</param>
    /// <returns>The options callback.</returns>
    public Action<Ingestion.SourceOptions> BenchSourceOptions(string table) => o =>
    {
        o.Table = table;
        o.CreateTable = true;
        o.MaxRetryAttempts = 0;
        o.Timeout = null;
        if (Options.BatchSize is { } size)
        {
            o.BatchSize = size;
        }
    };

    /// <summary>The sink settings of every "ours" case: the <c>--fillfactor</c> of created tables when given, <c>--arrival-order</c>, <c>--key-first</c>, <c>--async-commits</c>, <c>--sync-first-load</c>, <c>--first-load-flush-after</c> and <c>--key-index-max-rows</c>.</summary>
    /// <param name="options">The sink options.</param>
    public void BenchSinkOptions(Ingestion.Postgres.Sinks.PostgresSinkOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (Options.FillFactor is { } fill)
        {
            options.CreatedTableFillFactor = fill;
        }

        options.SendRowsInKeyOrder = !Options.ArrivalOrder;
        options.BuildKeyIndexAfterFirstLoad = !Options.KeyFirst;
        options.AsynchronousBatchCommits = Options.AsyncCommits;
        options.AsynchronousFirstLoadCommits = !Options.SyncFirstLoad;
        if (Options.FirstLoadFlushAfter is { } flushAfter)
        {
            options.FirstLoadFlushAfterKilobytes = flushAfter;
        }
        if (Options.KeyIndexMaxRows is { } keys)
        {
            options.KeyIndexMaxRows = keys;
        }
    }

    /// <summary>Whether this is an untimed warm-up pass (cases may skip notes or checks that only matter for the real pass).</summary>
    public bool IsWarmUp { get; private init; }

    /// <summary>The command-line options.</summary>
    public CompareOptions Options { get; }

    /// <summary>The row count asked for (<c>--rows</c>).</summary>
    public long Rows => Options.Rows;

    /// <summary>The connection string of the throwaway benchmark database.</summary>
    public string ConnectionString { get; }

    /// <summary>A data source on the benchmark database.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>A temporary folder for input files; deleted at the end.</summary>
    public string WorkDirectory { get; }

    /// <summary>Notes the current case added (printed after its line, prefixed with <c>#</c>).</summary>
    public IReadOnlyList<string> Notes => _notes;

    /// <summary>Adds a note to the current case's output (e.g. that it ran on fewer rows).</summary>
    /// <param name="note">The note.</param>
    public void Note(string note) => _notes.Add(note);

    internal void ClearNotes() => _notes.Clear();

    /// <summary>Runs SQL on the benchmark database.</summary>
    /// <param name="sql">The SQL (made by the harness, never from data).</param>
    /// <param name="cancellationToken">Cancels the command.</param>
    /// <returns>A task.</returns>
    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        cmd.CommandTimeout = 0;
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>Runs a scalar query on the benchmark database.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="sql">The SQL.</param>
    /// <param name="cancellationToken">Cancels the command.</param>
    /// <returns>The value.</returns>
    public async Task<T> ScalarAsync<T>(string sql, CancellationToken cancellationToken)
    {
        await using var cmd = DataSource.CreateCommand(sql);
        cmd.CommandTimeout = 0;
        return (T)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Drops a table and creates it fresh with the benchmark shape and primary key.</summary>
    /// <param name="table">The table name.</param>
    /// <param name="cancellationToken">Cancels the commands.</param>
    /// <returns>A task.</returns>
    public async Task CreateFreshTableAsync(string table, CancellationToken cancellationToken)
    {
        await ExecuteAsync($"DROP TABLE IF EXISTS {table}", cancellationToken);
        await ExecuteAsync(BenchTable.CreateSql(table), cancellationToken);
    }

    /// <summary>Throws unless <paramref name="table"/> holds exactly <paramref name="expected"/> rows.</summary>
    /// <param name="table">The table.</param>
    /// <param name="expected">The expected row count.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>A task.</returns>
    public async Task ExpectRowCountAsync(string table, long expected, CancellationToken cancellationToken)
    {
        var actual = await ScalarAsync<long>($"SELECT count(*) FROM {table}", cancellationToken);
        if (actual != expected)
        {
            throw new InvalidOperationException($"Table {table} holds {actual} rows after the case; expected {expected}.");
        }
    }

    /// <summary>Throws unless <paramref name="table"/> has a primary key (cases that build it after the rows).</summary>
    /// <param name="table">The table.</param>
    /// <param name="cancellationToken">Cancels the query.</param>
    /// <returns>A task.</returns>
    public async Task ExpectPrimaryKeyAsync(string table, CancellationToken cancellationToken)
    {
        if (await ScalarAsync<long>($"SELECT count(*) FROM pg_constraint WHERE conrelid = '{table}'::regclass AND contype = 'p'", cancellationToken) != 1)
        {
            throw new InvalidOperationException($"{table} has no primary key after the case.");
        }
    }

    /// <summary>The CSV file of the initial <paramref name="rows"/> rows (written once, shared by the CSV cases).</summary>
    /// <param name="rows">How many rows.</param>
    /// <returns>The file path.</returns>
    public Task<string> GetCsvFileAsync(long rows)
    {
        lock (_csvFiles)
        {
            if (!_csvFiles.TryGetValue(rows, out var file))
            {
                var path = Path.Combine(WorkDirectory, $"bench-{rows}.csv");
                file = Task.Run(() =>
                {
                    CsvFile.Write(path, RowGenerator.Rows(RowPlan.Initial, rows));
                    return path;
                });
                _csvFiles[rows] = file;
            }

            return file;
        }
    }
}
