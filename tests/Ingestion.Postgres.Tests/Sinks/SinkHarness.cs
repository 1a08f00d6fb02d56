using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sinks;
using Ingestion.Postgres.Stores;
using Ingestion.Sinks;
using Ingestion.TestSupport;
using Microsoft.Extensions.Options;

namespace Ingestion.Postgres.Tests.Sinks;

public sealed class Row
{
    [RecordKey]
    public string Id { get; set; } = "";

    public int Value { get; set; }

    public string? Note { get; set; }

    public DateTimeOffset? At { get; set; }
}

/// <summary>Builds the sink over a test database and drives its writer directly.</summary>
internal sealed class SinkHarness : IAsyncDisposable
{
    private long _position;

    public SinkHarness(PostgresDatabase db, Action<PostgresSinkOptions>? configure = null, string? connectionString = null, TimeProvider? time = null)
    {
        var options = new PostgresIngestionOptions { ConnectionString = connectionString ?? db.ConnectionString };
        Database = new IngestionDatabase(Options.Create(options), StoreSql.Migrations);
        var sinkOptions = new PostgresSinkOptions();
        configure?.Invoke(sinkOptions);
        Sink = new PostgresSink(Database, Options.Create(sinkOptions), timeProvider: time);
    }

    public IngestionDatabase Database { get; }

    public PostgresSink Sink { get; }

    public static SinkRun Run<T>(string source, Action<SourceOptions>? configure = null, bool dryRun = false, Guid? runId = null)
    {
        var options = new SourceOptions { CreateTable = true };
        configure?.Invoke(options);
        return new SinkRun
        {
            SourceName = source,
            RunId = runId ?? Guid.NewGuid(),
            Options = options,
            Schema = typeof(T) == typeof(DynamicRecord) ? null : RecordSchema.FromType(typeof(T)),
            IsDryRun = dryRun,
        };
    }

    public ValueTask<ISinkWriter<T>> OpenAsync<T>(SinkRun run)
        where T : class
    {
        _position = 0;
        return Sink.OpenAsync<T>(run, CancellationToken.None);
    }

    public SinkBatch<T> Batch<T>(IReadOnlyList<T> records, long budget = 0, SourceState? state = null, IReadOnlyList<RejectedRecord>? rejected = null, bool mayDeferCommit = false)
        where T : class
    {
        var batch = new SinkBatch<T> { Records = records, FirstRecordNumber = _position + 1, RejectBudget = budget, State = state, Rejected = rejected ?? [], MayDeferCommit = mayDeferCommit };
        _position += records.Count;
        return batch;
    }

    public static Row R(string id, int value, string? note = null) => new() { Id = id, Value = value, Note = note };

    /// <summary>Rows <c>k{from}</c> to <c>k{to}</c> (four digits), each valued its number times <paramref name="sign"/>.</summary>
    public static List<Row> Rows(int from, int to, int sign = 1) => [.. Enumerable.Range(from, to - from + 1).Select(i => R($"k{i:D4}", sign * i, $"note {i}"))];

    /// <summary>SQL giving whether <paramref name="table"/> (a test's own name) has its primary key.</summary>
    public static string HasPrimaryKeySql(string table) =>
        $"SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = '{table}'::regclass AND indisprimary)";

    /// <summary>SQL giving the comment on the hash column of <paramref name="table"/> (a test's own name), where the sink notes a key still to build.</summary>
    public static string HashColumnCommentSql(string table) =>
        $"SELECT col_description('{table}'::regclass, (SELECT attnum FROM pg_attribute WHERE attrelid = '{table}'::regclass AND attname = '_ingestion_hash'))";

    /// <summary>The batch with what the writer's <c>PrepareBatch</c> gave for it, as the runner hands it over.</summary>
    public static SinkBatch<T> Prepared<T>(SinkBatch<T> batch, object? prepared)
        where T : class => new()
    {
        Records = batch.Records,
        FirstRecordNumber = batch.FirstRecordNumber,
        RejectBudget = batch.RejectBudget,
        State = batch.State,
        Rejected = batch.Rejected,
        MayDeferCommit = batch.MayDeferCommit,
        Prepared = prepared,
    };

    public ValueTask DisposeAsync() => Database.DisposeAsync();
}
