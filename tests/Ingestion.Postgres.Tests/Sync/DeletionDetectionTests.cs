using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Sync;
using Ingestion.Running;
using Ingestion.Sync;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Postgres.Tests.Sync;

public sealed class Contact
{
    public string SourceId { get; set; } = "";

    public string Name { get; set; } = "";
}

/// <summary>Returns the contacts currently in a list; can fail after a number of records.</summary>
public sealed class ContactsSource(Func<IReadOnlyList<Contact>> rows, Func<int?> failAfter) : IngestionSource<Contact>
{
    public override async IAsyncEnumerable<Contact> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var n = 0;
        foreach (var r in rows())
        {
            await Task.Yield();
            if (failAfter() is { } f && n == f)
            {
                throw new InvalidOperationException($"connection reset after {n} records");
            }

            n++;
            yield return r;
        }
    }
}

/// <summary>
/// Deletion detection is a sink hook: it records the keys a full refresh returns and applies the deletions
/// to the PostgreSQL target table at the end. These tests run it through the runner and the PostgreSQL sink
/// (<c>UsePostgres</c>) over a target table filled by hand (as earlier runs would have), and read the counts
/// back from the result and from the <c>import_jobs</c> row.
/// </summary>
public class DeletionDetectionTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private List<Contact> _rows = [];
    private int? _failAfter;

    private async Task<ServiceProvider> HostAsync(string table, DeletionMode mode, double minFraction = 0.5)
    {
        await db.ExecuteAsync($"""
            DROP TABLE IF EXISTS public.{table};
            CREATE TABLE public.{table} (source text NOT NULL, source_id text NOT NULL, name text, PRIMARY KEY (source, source_id));
            INSERT INTO public.{table} SELECT 'crm', 'c' || g, 'n' || g FROM generate_series(1, 10) g;
            INSERT INTO public.{table} VALUES ('other', 'c1', 'kept: another source');
            """);
        _rows = Enumerable.Range(1, 10).Select(i => new Contact { SourceId = $"c{i}", Name = $"n{i}" }).ToList();
        var services = new ServiceCollection();
        services.AddIngestion()
            .UsePostgres(o => { o.ConnectionString = db.ConnectionString; o.Schema = "sync_" + table; })
            .AddSource("crm", _ => new ContactsSource(() => _rows, () => _failAfter), o => { o.MaxRetryAttempts = 0; o.Table = table; })
            .AddDeletionDetection("crm", o => { o.Mode = mode; o.MinFraction = minFraction; });
        return services.BuildServiceProvider();
    }

    private static RunRequest Full => new() { Mode = IngestionMode.FullRefresh };

    private Task<string> JobRowAsync(string table, Guid runId) =>
        db.ScalarAsync<string>($"SELECT status || ' deleted=' || deleted || ' read=' || read FROM sync_{table}.import_jobs WHERE id = '{runId}'");

    [Fact]
    public async Task A_full_refresh_soft_deletes_rows_the_source_no_longer_returns_and_revives_returning_ones()
    {
        await using var sp = await HostAsync("contacts_soft", DeletionMode.SoftDelete);
        var runner = sp.GetRequiredService<IIngestionRunner>();
        _rows.RemoveAll(r => r.SourceId is "c3" or "c7");
        var result = await runner.RunAsync("crm", Full, default);
        Assert.True(result.IsSuccess, result.ToString());
        Assert.Equal(2L, result.Counts.Deleted);
        Assert.Equal("Succeeded deleted=2 read=8", await JobRowAsync("contacts_soft", result.RunId));
        Assert.Equal("c3,c7", await db.ScalarAsync<string>("SELECT string_agg(source_id, ',' ORDER BY source_id) FROM public.contacts_soft WHERE deleted_at IS NOT NULL"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM public.contacts_soft WHERE source = 'other' AND deleted_at IS NULL"));

        // An incremental run never deletes.
        _rows.RemoveAll(r => r.SourceId == "c1");
        Assert.Equal(0L, (await runner.RunAsync("crm", null, default)).Counts.Deleted);

        // c3 comes back: it is live again; c1 is gone now.
        _rows.Add(new Contact { SourceId = "c3", Name = "n3" });
        var again = await runner.RunAsync("crm", Full, default);
        Assert.Equal(1L, again.Counts.Deleted);
        Assert.Equal("c1,c7", await db.ScalarAsync<string>("SELECT string_agg(source_id, ',' ORDER BY source_id) FROM public.contacts_soft WHERE deleted_at IS NOT NULL"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM sync_contacts_soft.sync_seen_keys"));
    }

    [Fact]
    public async Task A_refresh_below_the_floor_deletes_nothing_and_fails_clearly()
    {
        await using var sp = await HostAsync("contacts_floor", DeletionMode.Delete);
        var runner = sp.GetRequiredService<IIngestionRunner>();
        _rows = _rows.Take(4).ToList();
        var result = await runner.RunAsync("crm", Full, default);
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Contains("returned 4 rows, below the floor of 50", result.Error!.Message);
        Assert.Contains("of the 10 rows present", result.Error.Message);
        Assert.Contains("nothing was deleted", result.Error.Message);
        Assert.Equal("Failed deleted=0 read=4", await JobRowAsync("contacts_floor", result.RunId));
        Assert.Contains("below the floor", await db.ScalarAsync<string>($"SELECT error FROM sync_contacts_floor.import_jobs WHERE id = '{result.RunId}'"));
        Assert.Equal(11L, await db.ScalarAsync<long>("SELECT count(*) FROM public.contacts_floor"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM sync_contacts_floor.sync_seen_keys"));
    }

    [Fact]
    public async Task An_interrupted_full_refresh_deletes_nothing_and_the_next_one_completes_it()
    {
        await using var sp = await HostAsync("contacts_cut", DeletionMode.Delete);
        var runner = sp.GetRequiredService<IIngestionRunner>();
        _rows.RemoveAt(9);
        _failAfter = 5;
        var cut = await runner.RunAsync("crm", Full with { }, default);
        Assert.Equal(IngestionStatus.Failed, cut.Status);
        Assert.Equal(0L, cut.Counts.Deleted);
        Assert.StartsWith("Failed deleted=0", await JobRowAsync("contacts_cut", cut.RunId));
        Assert.Equal(11L, await db.ScalarAsync<long>("SELECT count(*) FROM public.contacts_cut"));

        _failAfter = null;
        var next = await runner.RunAsync("crm", Full, default);
        Assert.True(next.IsSuccess, next.ToString());
        Assert.Equal(1L, next.Counts.Deleted);
        Assert.Equal("Succeeded deleted=1 read=9", await JobRowAsync("contacts_cut", next.RunId));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM public.contacts_cut WHERE source_id = 'c10'"));
        Assert.Equal(10L, await db.ScalarAsync<long>("SELECT count(*) FROM public.contacts_cut"));
    }

    [Fact]
    public async Task A_dry_run_counts_what_it_would_delete_and_deletes_nothing()
    {
        await using var sp = await HostAsync("contacts_dry", DeletionMode.Delete);
        _rows.RemoveAt(0);
        var dry = await sp.GetRequiredService<IIngestionRunner>().RunAsync("crm", Full with { DryRun = true }, default);
        Assert.Equal(1L, dry.Counts.Deleted);
        Assert.Equal(11L, await db.ScalarAsync<long>("SELECT count(*) FROM public.contacts_dry"));
    }

    [Fact]
    public void Bad_settings_are_reported_at_start()
    {
        var services = new ServiceCollection();
        services.AddIngestion()
            .UsePostgres(o => o.ConnectionString = db.ConnectionString)
            .AddDeletionDetection("ghost", o => { o.Mode = DeletionMode.SoftDelete; o.MinFraction = 1.5; });
        using var sp = services.BuildServiceProvider();
        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => sp.GetRequiredService<IIngestionRunner>());
        Assert.Contains(e.Failures, f => f.Contains("Ingestion:Sources:ghost:Sync:Deletion:MinFraction", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("'ghost', which is not registered", StringComparison.Ordinal));
    }
}
