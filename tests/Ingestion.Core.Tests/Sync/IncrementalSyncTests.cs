using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Running;
using Ingestion.Sinks;
using Ingestion.Stores;
using Ingestion.Sync;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace Ingestion.Core.Tests.Sync;

public sealed class Row
{
    [RecordKey]
    public string Id { get; set; } = "";

    public DateTimeOffset? UpdatedAt { get; set; }

    public string Name { get; set; } = "";
}

/// <summary>A remote table read "since the cursor": returns rows whose UpdatedAt is at or after the window start, through the helper.</summary>
public sealed class RemoteTableSource(List<Row> table, CursorOptions options) : IngestionSource<Row>
{
    public IncrementalSync? LastSync { get; private set; }

    public override async IAsyncEnumerable<Row> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var sync = IncrementalSync.Begin(context, options);
        LastSync = sync;
        var n = 0;
        foreach (var row in table.OrderBy(r => r.UpdatedAt ?? DateTimeOffset.MinValue))
        {
            n++;
            await Task.Yield();
            if (row.UpdatedAt is { } u && ((sync.From is { } f && u < f.Timestamp) || (sync.To is { } t && u > t.Timestamp)))
            {
                continue;
            }

            if (sync.Observe(row.UpdatedAt, $"row {n}"))
            {
                yield return row;
            }
        }

        context.Checkpoint(sync.Checkpoint());
    }
}

public class IncrementalSyncTests
{
    private static readonly DateTimeOffset T0 = new(2026, 5, 1, 10, 0, 0, TimeSpan.Zero);

    private static RunContext Context(string? cursor, IngestionMode mode = IngestionMode.Incremental, Dictionary<string, string>? parameters = null) =>
        new("crm", Guid.NewGuid(), new RunRequest { Mode = mode, Parameters = parameters ?? [] }, new SourceState { Cursor = cursor }, IngestionLimits.None, NullLogger.Instance, TimeProvider.System);

    [Fact]
    public void The_window_starts_at_the_saved_cursor_minus_the_overlap()
    {
        var sync = IncrementalSync.Begin(Context(T0.ToString("O")), new CursorOptions { Overlap = TimeSpan.FromMinutes(10) });
        Assert.Equal(T0.AddMinutes(-10), sync.From!.Value.Timestamp);
        Assert.Null(sync.To);
        Assert.False(sync.IsBackfill);

        var ids = IncrementalSync.Begin(Context("1000"), new CursorOptions { Kind = CursorKind.Id, OverlapIds = 50 });
        Assert.Equal(950, ids.From!.Value.Id);

        var first = IncrementalSync.Begin(Context(null), new CursorOptions());
        Assert.Null(first.From);
        var full = IncrementalSync.Begin(Context(T0.ToString("O"), IngestionMode.FullRefresh), new CursorOptions { Overlap = TimeSpan.FromMinutes(10) });
        Assert.Null(full.From);
    }

    [Fact]
    public void The_checkpoint_is_the_greatest_value_and_never_moves_backwards()
    {
        var context = Context(T0.ToString("O"));
        var sync = IncrementalSync.Begin(context, new CursorOptions { Overlap = TimeSpan.FromMinutes(5) });
        Assert.True(sync.Observe(T0.AddMinutes(3), "row 1"));
        Assert.True(sync.Observe(T0.AddMinutes(-2), "row 2"));
        Assert.True(sync.Observe(T0.AddMinutes(1), "row 3"));
        Assert.Equal(T0.AddMinutes(3).ToString("O"), sync.Checkpoint().Cursor);
        Assert.Equal(1, sync.Repeats);

        // The source's data went backwards (restored from an old backup): every value is before the saved cursor.
        var back = IncrementalSync.Begin(Context(T0.ToString("O")), new CursorOptions());
        Assert.True(back.Observe(T0.AddDays(-3), "row 1"));
        Assert.True(back.WentBackwards);
        Assert.Null(back.Checkpoint().Cursor);
    }

    [Fact]
    public void A_saved_cursor_of_the_wrong_type_fails_before_reading_and_names_the_field()
    {
        var e = Assert.Throws<IngestionException>(() => IncrementalSync.Begin(Context("page-token-xyz"), new CursorOptions { Field = "updated_at" }));
        Assert.Contains("saved cursor 'page-token-xyz' is not a timestamp", e.Message);
        Assert.Equal("updated_at", e.Field);
        Assert.Equal("crm", e.SourceName);
        Assert.Contains("'2026-05-01' is not an integer id", Assert.Throws<IngestionException>(() => IncrementalSync.Begin(Context("2026-05-01"), new CursorOptions { Kind = CursorKind.Id })).Message);
    }

    [Fact]
    public void Rows_with_a_null_or_wrong_typed_cursor_are_rejected_with_their_position()
    {
        var context = Context(null);
        var sync = IncrementalSync.Begin(context, new CursorOptions { Field = "updated_at" });
        Assert.False(sync.Observe((DateTimeOffset?)null, "row 7"));
        Assert.False(sync.Observe((object)"not a date", "row 8"));
        Assert.True(sync.Observe((object)"2026-05-01T10:00:00Z", "row 9"));
        var (rejects, _) = context.TakePending();
        Assert.Equal(2, rejects.Count);
        Assert.Equal(("row 7", "updated_at"), (rejects[0].Position, rejects[0].Field));
        Assert.Contains("is null", rejects[0].Reason);
        Assert.Contains("holds a String, not a timestamp", rejects[1].Reason);
        Assert.Equal("not a date", rejects[1].RawValue);
        Assert.Equal(2, sync.Rejected);

        var include = IncrementalSync.Begin(Context(null), new CursorOptions { NullCursor = NullCursorHandling.Include });
        Assert.True(include.Observe((DateTimeOffset?)null, "row 1"));
        Assert.Null(include.Checkpoint().Cursor);
    }

    [Fact]
    public void A_backfill_reads_its_range_and_never_touches_the_cursor()
    {
        var p = new Dictionary<string, string> { [IncrementalSync.BackfillFromParameter] = "2026-01-01", [IncrementalSync.BackfillToParameter] = "2026-01-31T23:59:59Z" };
        var sync = IncrementalSync.Begin(Context(T0.ToString("O"), parameters: p), new CursorOptions { Overlap = TimeSpan.FromHours(1) });
        Assert.True(sync.IsBackfill);
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero), sync.From!.Value.Timestamp);
        Assert.Equal(new DateTimeOffset(2026, 1, 31, 23, 59, 59, TimeSpan.Zero), sync.To!.Value.Timestamp);
        sync.Observe(new DateTimeOffset(2026, 1, 15, 0, 0, 0, TimeSpan.Zero), "row 1");
        Assert.Null(sync.Checkpoint().Cursor);

        Assert.Contains("'backfill.from': 'last week' is not a timestamp", Assert.Throws<IngestionException>(() => IncrementalSync.Begin(Context(null, parameters: new() { ["backfill.from"] = "last week" }), new CursorOptions())).Message);
        Assert.Contains("range is empty", Assert.Throws<IngestionException>(() => IncrementalSync.Begin(Context(null, parameters: new() { ["backfill.from"] = "200", ["backfill.to"] = "100" }), new CursorOptions { Kind = CursorKind.Id })).Message);
        Assert.Contains("needs 'backfill.from'", Assert.Throws<IngestionException>(() => IncrementalSync.Begin(Context(null, parameters: new() { ["backfill.to"] = "100" }), new CursorOptions { Kind = CursorKind.Id })).Message);
        Assert.Contains("cannot be a full refresh", Assert.Throws<IngestionException>(() => IncrementalSync.Begin(Context(null, IngestionMode.FullRefresh, new() { ["backfill.from"] = "1" }), new CursorOptions { Kind = CursorKind.Id })).Message);
        Assert.Contains("Overlap applies to Timestamp cursors only", Assert.Throws<IngestionException>(() => IncrementalSync.Begin(Context(null), new CursorOptions { Kind = CursorKind.Opaque, Overlap = TimeSpan.FromMinutes(1) })).Message);
    }

    [Fact]
    public async Task Overlap_repeats_are_absorbed_by_the_merge_and_counted_unchanged()
    {
        var table = Enumerable.Range(1, 20).Select(i => new Row { Id = $"r{i}", UpdatedAt = T0.AddMinutes(i), Name = $"n{i}" }).ToList();
        var source = new RemoteTableSource(table, new CursorOptions { Overlap = TimeSpan.FromMinutes(5), Field = "updated_at" });
        var services = new ServiceCollection();
        services.AddIngestion().AddSource("crm", _ => source, o => o.MaxRetryAttempts = 0);
        await using var sp = services.BuildServiceProvider();
        var runner = sp.GetRequiredService<IIngestionRunner>();

        var first = await runner.RunAsync("crm", null, CancellationToken.None);
        Assert.Equal(20, first.Counts.Created);
        Assert.Equal(T0.AddMinutes(20).ToString("O"), (await sp.GetRequiredService<ISourceStateStore>().GetAsync("crm", default)).Cursor);

        // Two rows tied on the last cursor value and one committed late inside the window: the overlap finds them.
        table.Add(new Row { Id = "tie", UpdatedAt = T0.AddMinutes(20), Name = "tie" });
        table.Add(new Row { Id = "late", UpdatedAt = T0.AddMinutes(17), Name = "late" });
        table.Add(new Row { Id = "new", UpdatedAt = T0.AddMinutes(30), Name = "new" });
        var second = await runner.RunAsync("crm", null, CancellationToken.None);
        Assert.Equal(3, second.Counts.Created);
        Assert.Equal(6, second.Counts.Unchanged); // r15..r20 re-read by the 5-minute window
        Assert.True(second.Counts.AddsUp);
        Assert.Equal(T0.AddMinutes(30).ToString("O"), (await sp.GetRequiredService<ISourceStateStore>().GetAsync("crm", default)).Cursor);

        // A backfill of an old range re-imports it and leaves the cursor where it was.
        table[0].Name = "fixed";
        var backfill = await runner.RunAsync("crm", new RunRequest { Parameters = new Dictionary<string, string> { ["backfill.from"] = T0.ToString("O"), ["backfill.to"] = T0.AddMinutes(2).ToString("O") } }, CancellationToken.None);
        Assert.Equal((1L, 1L), (backfill.Counts.Updated, backfill.Counts.Unchanged));
        Assert.Equal(T0.AddMinutes(30).ToString("O"), (await sp.GetRequiredService<ISourceStateStore>().GetAsync("crm", default)).Cursor);
    }

    [Fact]
    public async Task A_null_cursor_row_is_rejected_through_the_runner()
    {
        var table = new List<Row> { new() { Id = "a", UpdatedAt = T0 }, new() { Id = "b", UpdatedAt = null } };
        var source = new RemoteTableSource(table, new CursorOptions { Field = "updated_at" });
        var services = new ServiceCollection();
        services.AddIngestion().AddSource("crm", _ => source, o => { o.MaxRetryAttempts = 0; o.MaxRejected = 5; });
        await using var sp = services.BuildServiceProvider();
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("crm", null, CancellationToken.None);
        Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);
        Assert.Equal((1L, 1L), (result.Counts.Created, result.Counts.Rejected));
        Assert.True(result.Counts.AddsUp);
    }

    [Fact]
    public void The_deletion_floor_stops_suspiciously_small_refreshes()
    {
        var o = new DeletionOptions { Mode = DeletionMode.SoftDelete, MinFraction = 0.5 };
        DeletionFloor.Check("events", 500, 1000, o);
        DeletionFloor.Check("events", 0, 0, o);
        var e = Assert.Throws<DeletionFloorException>(() => DeletionFloor.Check("events", 499, 1000, o));
        Assert.Contains("returned 499 rows, below the floor of 50 % of the 1000 rows present", e.Message.Replace("50%", "50 %", StringComparison.Ordinal));
        Assert.Contains("nothing was deleted", e.Message);
        Assert.Contains("Ingestion:Sources:events:Sync:Deletion:MinFraction", e.Message);
        Assert.Throws<DeletionFloorException>(() => DeletionFloor.Check("events", 5, 0, new DeletionOptions { MinRows = 10 }));
        Assert.Equal(3, new DeletionOptions { MinFraction = 2, MinRows = -1, Mode = DeletionMode.SoftDelete, DeletedAtColumn = " " }.Validate("x").Count);
    }

    [Fact]
    public async Task State_edits_are_validated_locked_and_audited_in_the_job_history()
    {
        var states = new InMemorySourceStateStore();
        var jobs = new InMemoryImportJobStore();
        var locks = new InMemoryRunLockProvider();
        await states.SaveAsync("crm", new SourceState { Cursor = T0.ToString("O"), ETag = "\"e1\"" }, default);
        var editor = new SourceStateEditor(states, jobs, locks, TimeProvider.System);

        Assert.Equal(T0.ToString("O"), (await editor.ShowAsync("crm", default)).Cursor);
        var set = await editor.SetCursorAsync("crm", CursorKind.Timestamp, "2026-04-01", "alice", "replay April", default);
        Assert.Equal("2026-04-01T00:00:00.0000000+00:00", set.Cursor);
        Assert.Equal("\"e1\"", set.ETag);
        Assert.Contains("not a valid Timestamp cursor", (await Assert.ThrowsAsync<ArgumentException>(() => editor.SetCursorAsync("crm", CursorKind.Timestamp, "yesterday", "alice", null, default))).Message);
        Assert.Equal("2026-04-01T00:00:00.0000000+00:00", (await states.GetAsync("crm", default)).Cursor);

        var reset = await editor.ResetAsync("crm", "bob", null, default);
        Assert.Null(reset.Cursor);
        Assert.Null(reset.ETag);

        await using (await locks.TryAcquireAsync("crm", Guid.NewGuid(), default))
        {
            Assert.Contains("is running", (await Assert.ThrowsAsync<InvalidOperationException>(() => editor.ResetAsync("crm", "bob", null, default))).Message);
        }

        var audit = await jobs.ListRecentAsync(10, "crm", default);
        Assert.Equal(2, audit.Count);
        Assert.All(audit, j => Assert.Equal(IngestionStatus.Succeeded, j.Status));
        Assert.Contains(audit, j => j.Trigger == "state-edit by alice: set-cursor '2026-05-01T10:00:00.0000000+00:00' -> '2026-04-01T00:00:00.0000000+00:00' (replay April)");
        Assert.Contains(audit, j => j.Trigger == "state-edit by bob: reset '2026-04-01T00:00:00.0000000+00:00' -> (none)");
    }
}
