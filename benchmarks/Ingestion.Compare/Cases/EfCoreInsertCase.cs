using Ingestion.Benchmarks.Data;
using Ingestion.Compare.Harness;
using Microsoft.EntityFrameworkCore;

namespace Ingestion.Compare.Cases;

/// <summary>
/// EF Core: <c>AddRange</c> + <c>SaveChanges</c> per chunk of 10,000 rows, a fresh <see cref="DbContext"/>
/// per chunk (the usual advice, so the change tracker never holds the whole load), into a fresh table
/// with the primary key. Runs on <c>--ef-rows</c> rows (default 200k): it is too slow for a million.
/// </summary>
public sealed class EfCoreInsertCase : CompareCase
{
    private const string Table = "bench_efcore";
    private const int Chunk = 10_000;

    /// <inheritdoc />
    public override string Name => "efcore_insert";

    /// <inheritdoc />
    public override Task SetUpAsync(CaseContext context, CancellationToken cancellationToken)
    {
        if (context.Options.EfRows != context.Rows)
        {
            context.Note($"ran on {context.Options.EfRows} rows, not {context.Rows} (--ef-rows sets it); its rate is comparable, its time is not");
        }

        return context.CreateFreshTableAsync(Table, cancellationToken);
    }

    /// <inheritdoc />
    public override async Task<long> RunAsync(CaseContext context, CancellationToken cancellationToken)
    {
        var options = new DbContextOptionsBuilder<BenchDbContext>().UseNpgsql(context.DataSource).Options;
        long written = 0;
        foreach (var chunk in RowGenerator.Rows(RowPlan.Initial, context.Options.EfRows).Chunk(Chunk))
        {
            await using var db = new BenchDbContext(options);
            db.Rows.AddRange(chunk);
            written += await db.SaveChangesAsync(cancellationToken);
        }

        return written;
    }

    /// <inheritdoc />
    public override Task VerifyAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExpectRowCountAsync(Table, context.Options.EfRows, cancellationToken);

    /// <inheritdoc />
    public override Task TearDownAsync(CaseContext context, CancellationToken cancellationToken) =>
        context.ExecuteAsync($"DROP TABLE IF EXISTS {Table}", cancellationToken);

    private sealed class BenchDbContext(DbContextOptions<BenchDbContext> options) : DbContext(options)
    {
        public DbSet<BenchRow> Rows => Set<BenchRow>();

        protected override void OnModelCreating(ModelBuilder modelBuilder)
        {
            var e = modelBuilder.Entity<BenchRow>();
            e.ToTable(Table);
            e.HasKey(r => new { r.Region, r.Code });
            e.Property(r => r.Region).HasColumnName("region");
            e.Property(r => r.Code).HasColumnName("code");
            e.Property(r => r.ObservedAt).HasColumnName("observed_at");
            e.Property(r => r.Name).HasColumnName("name");
            e.Property(r => r.Category).HasColumnName("category");
            e.Property(r => r.Quantity).HasColumnName("quantity");
            e.Property(r => r.Latitude).HasColumnName("latitude");
            e.Property(r => r.Longitude).HasColumnName("longitude");
            e.Property(r => r.Description).HasColumnName("description");
            e.Property(r => r.Active).HasColumnName("active");
        }
    }
}
