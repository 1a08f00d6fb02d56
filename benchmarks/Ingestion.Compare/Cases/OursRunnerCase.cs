using System.Collections;
using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Ingestion.Sinks;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Compare.Cases;

/// <summary>
/// Our whole path: the runner reads a source of generated <see cref="BenchRow"/> records and the
/// PostgreSQL sink merges them (binary COPY, created/updated/unchanged counts), with the library's
/// defaults (<see cref="SourceOptions.BatchSize"/>, sink settings) unless <c>--batch-size</c> is given.
/// The sink creates the table (its primary key is the record key). When <see cref="Preloaded"/>, the table
/// is first loaded with the initial rows and vacuumed (not timed), then <see cref="Plan"/> is sent.
/// After the run the exact counts, the row count and a checksum of the values are verified.
/// </summary>
public abstract class OursRunnerCase : CompareCase
{
    private ServiceProvider? _services;
    private GeneratedRowsSource? _source;
    private IngestionResult? _result;

    /// <summary>The rows the timed run sends.</summary>
    protected abstract RowPlan Plan { get; }

    /// <summary>Whether the table holds the initial rows before the timed run.</summary>
    protected abstract bool Preloaded { get; }

    /// <summary>Whether the table exists before the run, made by the user with its primary key (the sink may not drop it).</summary>
    protected virtual bool UserMadeTable => false;

    private string Table => $"bench_{Name}";

    private string SourceName => $"bench-{Name.Replace('_', '-')}";

    /// <inheritdoc />
    public override async Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        await context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);
        if (UserMadeTable)
        {
            await context.CreateFreshTableAsync(Table, cancellationToken);
        }

        _source = new GeneratedRowsSource { Count = context.Rows };

        // One service provider for every pass and round, as a host keeps one for its lifetime: a provider built per
        // run compiles its resolvers (and the runner's first-use paths) again inside each timed run, which no host pays
        // for its second run, and keeps the warm-up from ever reaching steady code. The source's factory reads _source.
        if (_services is null)
        {
            var services = new ServiceCollection();
            services.AddIngestion()
                .UsePostgres(o => o.ConnectionString = context.ConnectionString)
                .ConfigurePostgresSink(context.BenchSinkOptions)
                .AddSource(SourceName, _ => _source, context.BenchSourceOptions(Table));
            _services = services.BuildServiceProvider();
        }

        if (_services.GetRequiredService<IIngestionSink>() is InMemorySink)
        {
            throw new InvalidOperationException("UsePostgres() did not register the PostgreSQL sink in this build: our cases need it (src/Ingestion.Postgres/Sinks).");
        }

        if (Preloaded)
        {
            _source.Plan = RowPlan.Initial;
            var preload = await Runner.RunAsync(SourceName, new RunRequest { Trigger = "benchmark-preload" }, cancellationToken);
            if (preload.Status != IngestionStatus.Succeeded || preload.Counts.Created != context.Rows)
            {
                throw new InvalidOperationException($"The preload of {Table} did not load {context.Rows} rows: {preload}");
            }

            await context.ExecuteAsync($"VACUUM (ANALYZE) {Table}", cancellationToken);
        }
        else
        {
            // Migrate the library's schema now, so the timed run does not pay for it.
            await _services.GetRequiredService<IngestionDatabase>().EnsureMigratedAsync(cancellationToken);
        }

        _source.Plan = Plan;
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        _result = await Runner.RunAsync(SourceName, new RunRequest { Trigger = "benchmark" }, cancellationToken);
        if (_result.Status != IngestionStatus.Succeeded)
        {
            throw new InvalidOperationException($"The run failed: {_result}");
        }

        return _result.Counts.Read;
    }

    /// <inheritdoc />
    public override async Task VerifyAsync(CaseContext context, CancellationToken cancellationToken)
    {
        var counts = _result!.Counts;
        var (created, updated, unchanged) = RowGenerator.ExpectedCounts(Plan, context.Rows, tableIsEmpty: !Preloaded);
        if (counts.Read != context.Rows || counts.Created != created || counts.Updated != updated || counts.Unchanged != unchanged || counts.Duplicates != 0 || counts.Rejected != 0)
        {
            throw new InvalidOperationException($"Wrong counts: {counts}; expected read={context.Rows} created={created} updated={updated} unchanged={unchanged}.");
        }

        if (UserMadeTable && await context.ScalarAsync<long>($"SELECT count(*) FROM pg_constraint WHERE conrelid = '{Table}'::regclass AND contype = 'p' AND conname = '{Table}_pkey'", cancellationToken) != 1)
        {
            throw new InvalidOperationException($"The user's primary key {Table}_pkey is gone after the run: the sink may not drop it.");
        }

        var (rows, quantitySum) = ExpectedTable(context.Rows);
        await context.ExpectRowCountAsync(Table, rows, cancellationToken);
        var actualSum = await context.ScalarAsync<decimal>($"SELECT sum(quantity::numeric) FROM {Table}", cancellationToken);
        if (actualSum != quantitySum)
        {
            throw new InvalidOperationException($"Table {Table} has sum(quantity) = {actualSum}; the rows sent make {quantitySum}: some values were not written.");
        }

        if (!context.IsWarmUp)
        {
            context.Note($"{counts}; batch size {context.Options.BatchSize?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "default"}{(context.Options.FillFactor is { } fill ? $"; created table fillfactor {fill.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : string.Empty)}");
        }
    }

    /// <inheritdoc />
    public override async Task TearDownAsync(CaseContext context, CancellationToken cancellationToken)
    {
        await context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);
    }

    private IIngestionRunner Runner => _services!.GetRequiredService<IIngestionRunner>();

    // The table after the run: the preloaded rows (ids 0..n-1, version 0) overridden by the plan's rows.
    private (long Rows, decimal QuantitySum) ExpectedTable(long n)
    {
        var covered = new BitArray(checked((int)n));
        decimal sum = 0;
        long rows = 0;
        for (long i = 0; i < n; i++)
        {
            var (id, version) = RowGenerator.Map(Plan, i, n);
            sum += RowGenerator.Create(id, version).Quantity;
            rows++;
            if (id < n)
            {
                covered[(int)id] = true;
            }
        }

        if (Preloaded)
        {
            for (var id = 0; id < n; id++)
            {
                if (!covered[id])
                {
                    sum += RowGenerator.Create(id, 0).Quantity;
                    rows++;
                }
            }
        }

        return (rows, sum);
    }
}

/// <summary><c>ours_first_load</c>: all rows new, into a table the sink creates.</summary>
public sealed class OursFirstLoadCase : OursRunnerCase
{
    /// <inheritdoc />
    public override string Name => "ours_first_load";

    /// <inheritdoc />
    protected override RowPlan Plan => RowPlan.Initial;

    /// <inheritdoc />
    protected override bool Preloaded => false;
}

/// <summary><c>ours_first_load_keyed</c>: all rows new, into an empty table the user made with its primary key (kept as it is).</summary>
public sealed class OursFirstLoadKeyedCase : OursRunnerCase
{
    /// <inheritdoc />
    public override string Name => "ours_first_load_keyed";

    /// <inheritdoc />
    protected override RowPlan Plan => RowPlan.Initial;

    /// <inheritdoc />
    protected override bool Preloaded => false;

    /// <inheritdoc />
    protected override bool UserMadeTable => true;
}

/// <summary><c>ours_mixed</c>: n rows into a table of n rows: a third new, a third changed, a third unchanged.</summary>
public sealed class OursMixedCase : OursRunnerCase
{
    /// <inheritdoc />
    public override string Name => "ours_mixed";

    /// <inheritdoc />
    protected override RowPlan Plan => RowPlan.Mixed;

    /// <inheritdoc />
    protected override bool Preloaded => true;
}

/// <summary><c>ours_unchanged</c>: the same n rows again.</summary>
public sealed class OursUnchangedCase : OursRunnerCase
{
    /// <inheritdoc />
    public override string Name => "ours_unchanged";

    /// <inheritdoc />
    protected override RowPlan Plan => RowPlan.Initial;

    /// <inheritdoc />
    protected override bool Preloaded => true;
}

/// <summary><c>ours_update_all</c>: every one of the n rows changed.</summary>
public sealed class OursUpdateAllCase : OursRunnerCase
{
    /// <inheritdoc />
    public override string Name => "ours_update_all";

    /// <inheritdoc />
    protected override RowPlan Plan => RowPlan.AllChanged;

    /// <inheritdoc />
    protected override bool Preloaded => true;
}

/// <summary>A source of generated rows; the case sets the plan before each run.</summary>
internal sealed class GeneratedRowsSource : IngestionSource<BenchRow>
{
    public RowPlan Plan { get; set; }

    public long Count { get; set; }

    public override IAsyncEnumerable<BenchRow> ReadAsync(IngestionContext context, CancellationToken cancellationToken) =>
        RowGenerator.Rows(Plan, Count).ToAsyncEnumerable();
}
