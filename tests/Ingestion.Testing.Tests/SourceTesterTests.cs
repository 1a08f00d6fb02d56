using System.Globalization;
using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Sources.Csv;
using Ingestion.Sources.Ics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Ingestion.Testing.Tests;

public sealed class Row
{
    [RecordKey]
    public string Id { get; set; } = "";

    public int Value { get; set; }
}

/// <summary>A paged source over rows 1..count: resumes after the cursor, checkpoints after each page, rejects odd multiples of 7.</summary>
public sealed class PagedSource(int count, int pageSize, bool checkpointBeforeYield = false, bool ignoreCursor = false) : IngestionSource<Row>
{
    public override async IAsyncEnumerable<Row> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var start = ignoreCursor || !int.TryParse(context.State.Cursor, CultureInfo.InvariantCulture, out var c) ? 0 : c;
        for (var i = start + 1; i <= count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await Task.Yield();
            var endOfPage = i % pageSize == 0 || i == count;
            if (checkpointBeforeYield && endOfPage)
            {
                // The bug this kit exists to catch: the checkpoint claims a record that was not yielded yet.
                context.Checkpoint(new SourceCheckpoint(i.ToString(CultureInfo.InvariantCulture)));
            }

            if (i % 14 == 7)
            {
                context.Reject(new RejectedRecord($"row {i}", "Value", "not a number", "seven"));
            }
            else
            {
                yield return new Row { Id = $"r{i}", Value = i };
            }

            if (!checkpointBeforeYield && endOfPage)
            {
                context.Checkpoint(new SourceCheckpoint(i.ToString(CultureInfo.InvariantCulture)));
            }
        }
    }
}

public sealed class DelegateSource<T>(Func<IngestionContext, CancellationToken, IAsyncEnumerable<T>> read) : IngestionSource<T>
    where T : class
{
    public override IAsyncEnumerable<T> ReadAsync(IngestionContext context, CancellationToken cancellationToken) => read(context, cancellationToken);
}

public sealed class NoKey
{
    public string Name { get; set; } = "";
}

public class SourceTesterTests
{
    [Fact]
    public async Task Collects_records_rejected_records_and_checkpoints_and_the_resulting_state()
    {
        var run = await SourceTester.RunAsync(new PagedSource(count: 25, pageSize: 10));
        Assert.Equal(23, run.Records.Count); // 7 and 21 rejected
        Assert.Equal(["row 7", "row 21"], run.Rejected.Select(r => r.Position));
        Assert.Equal(["10", "20", "25"], run.Checkpoints.Select(c => c.Checkpoint.Cursor));
        Assert.Equal([9L, 19L, 23L], run.Checkpoints.Select(c => c.RecordsBefore));
        Assert.Equal("25", run.State.Cursor);
        Assert.Empty(run.RecordsAfterLastCheckpoint);
        Assert.False(run.StoppedByCap);
    }

    [Fact]
    public async Task Starts_from_a_saved_state_and_a_full_refresh_hides_the_cursor()
    {
        var saved = SourceState.Empty.Apply(new SourceCheckpoint("20"));
        var resumed = await SourceTester.RunAsync(new PagedSource(25, 10), new SourceTestOptions { State = saved });
        Assert.Equal(["r22", "r23", "r24", "r25"], resumed.Records.Select(r => r.Id)); // r21 rejected
        var full = await SourceTester.RunAsync(new PagedSource(25, 10), new SourceTestOptions { State = saved, Mode = IngestionMode.FullRefresh });
        Assert.Equal(23, full.Records.Count);
    }

    [Fact]
    public async Task An_interrupted_run_stops_at_the_cap_and_reports_what_its_checkpoint_does_not_cover()
    {
        var run = await SourceTester.RunAsync(new PagedSource(25, 10), new SourceTestOptions { MaxRecords = 12 });
        Assert.True(run.StoppedByCap);
        Assert.Equal(12, run.Records.Count);
        Assert.Equal("10", run.State.Cursor);
        Assert.Equal(["r11", "r12", "r13"], run.RecordsAfterLastCheckpoint.Select(r => r.Id));
    }

    [Fact]
    public async Task A_correct_source_resumes_from_every_checkpoint_and_after_an_interruption()
    {
        var full = await SourceTester.AssertResumesAsync(() => new PagedSource(25, 10), r => r.Id);
        Assert.Equal(23, full.Records.Count);
        await SourceTester.AssertResumesAsync(() => new PagedSource(25, 10), r => r.Id, interruptAfter: 15);
    }

    [Fact]
    public async Task A_source_that_checkpoints_before_yielding_loses_a_record_and_the_kit_says_which()
    {
        var e = await Assert.ThrowsAsync<SourceAssertionException>(() => SourceTester.AssertResumesAsync(() => new PagedSource(25, 10, checkpointBeforeYield: true), r => r.Id));
        Assert.Contains("checkpoint 1 of 3 (cursor '10'", e.Message, StringComparison.Ordinal);
        Assert.Contains("'r10'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_source_that_ignores_its_cursor_reads_records_twice_and_the_kit_says_so()
    {
        var e = await Assert.ThrowsAsync<SourceAssertionException>(() => SourceTester.AssertResumesAsync(() => new PagedSource(25, 10, ignoreCursor: true), r => r.Id, interruptAfter: 12));
        Assert.Contains("Read twice: r1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_source_without_checkpoints_cannot_resume()
    {
        var source = () => new DelegateSource<Row>((_, ct) => Rows(3, ct));
        var e = await Assert.ThrowsAsync<SourceAssertionException>(() => SourceTester.AssertResumesAsync(source, r => r.Id));
        Assert.Contains("reported no checkpoint", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Contract_violations_fail_with_a_clear_message()
    {
        var nullRecord = await Assert.ThrowsAsync<SourceAssertionException>(() => SourceTester.RunAsync(new DelegateSource<Row>((_, ct) => WithNull(ct))));
        Assert.Contains("yielded a null record after record 1", nullRecord.Message, StringComparison.Ordinal);

        var noKey = await Assert.ThrowsAsync<SourceAssertionException>(() => SourceTester.RunAsync(new DelegateSource<NoKey>((_, _) => AsyncEnumerable.Empty<NoKey>())));
        Assert.Contains(typeof(NoKey).FullName!, noKey.Message, StringComparison.Ordinal);

        var late = await Assert.ThrowsAsync<SourceAssertionException>(() => SourceTester.RunAsync(new DelegateSource<Row>((ctx, ct) => NotModifiedLate(ctx, ct))));
        Assert.Contains("NotModified after yielding 1 records", late.Message, StringComparison.Ordinal);

        var noPosition = await Assert.ThrowsAsync<SourceAssertionException>(() => SourceTester.RunAsync(new DelegateSource<Row>((ctx, ct) => RejectWithoutPosition(ctx, ct))));
        Assert.Contains("without a position", noPosition.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_source_that_hangs_fails_at_the_timeout_even_if_it_ignores_its_token()
    {
        var e = await Assert.ThrowsAsync<SourceAssertionException>(() => SourceTester.RunAsync(
            new DelegateSource<Row>((_, _) => Hang()),
            new SourceTestOptions { Timeout = TimeSpan.FromMilliseconds(200) }).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("did not finish within", e.Message, StringComparison.Ordinal);
        Assert.Contains("after 1 records", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_failed_run_keeps_the_records_and_rejects_read_before_the_failure()
    {
        var e = await Assert.ThrowsAsync<SourceRunFailedException<Row>>(() => SourceTester.RunAsync(new DelegateSource<Row>((ctx, ct) => FailAfterTwo(ctx, ct))));

        var run = e.Run!;
        Assert.Equal(["a", "b"], run.Records.Select(r => r.Id));
        Assert.Equal("row 3", Assert.Single(run.Rejected).Position);
        Assert.Equal("a", run.State.Cursor);
        Assert.IsType<IngestionException>(run.Failure);
        Assert.Same(run.Failure, e.InnerException);
        Assert.Contains("failed after 2 records and 1 rejected records: the server went away", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_source_configured_in_a_service_collection_is_run_by_name_with_its_ICS_window_set_as_options()
    {
        var path = Path.Combine(Path.GetTempPath(), $"kit-{Guid.NewGuid():N}.ics");
        await File.WriteAllTextAsync(path, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:daily@x\r\nDTSTART:20300101T100000Z\r\nRRULE:FREQ=DAILY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n");
        try
        {
            var services = new ServiceCollection();
            services.AddLogging();
            services.AddIngestion().AddIcsSource("calendar", o =>
            {
                o.Url = path;
                o.WindowStart = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
                o.WindowEnd = new DateTimeOffset(2030, 1, 4, 0, 0, 0, TimeSpan.Zero);
            });
            await using var provider = services.BuildServiceProvider();

            var run = await SourceTester.RunAsync<CalendarEvent>("calendar", provider);

            Assert.Equal(["daily@x/20300101T100000Z", "daily@x/20300102T100000Z", "daily@x/20300103T100000Z"], run.Records.Select(e => e.SourceId));
            Assert.Equal("calendar", run.Context.SourceName);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Getting_a_source_by_name_validates_the_options_as_at_start()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddIngestion()
            .AddIcsSource("calendar", o =>
            {
                o.Url = "https://example.org/a.ics";
                o.WindowStart = new DateTimeOffset(2030, 2, 1, 0, 0, 0, TimeSpan.Zero);
                o.WindowEnd = new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);
            })
            .AddCsvSource("parks", o => o.MaxFieldLines = 0);
        await using var provider = services.BuildServiceProvider();

        var e = Assert.Throws<OptionsValidationException>(() => SourceTester.ForSource<CalendarEvent>("calendar", provider));
        var all = string.Join('\n', e.Failures);
        Assert.Contains("Ingestion:Sources:calendar:WindowEnd", all, StringComparison.Ordinal);
        Assert.Contains("Ingestion:Sources:parks:MaxFieldLines", all, StringComparison.Ordinal);

        var unknown = Assert.Throws<SourceAssertionException>(() => SourceTester.ForSource<CalendarEvent>("agenda", provider));
        Assert.Contains("'calendar', 'parks'", unknown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Not_modified_is_reported_with_its_validators()
    {
        var run = await SourceTester.RunAsync(new DelegateSource<Row>((ctx, _) => NotModifiedFirst(ctx)));
        Assert.True(run.NotModified);
        Assert.Empty(run.Records);
        Assert.Equal("\"abc\"", run.State.ETag);
    }

    private static async IAsyncEnumerable<Row> Rows(int n, [EnumeratorCancellation] CancellationToken ct)
    {
        for (var i = 1; i <= n; i++)
        {
            await Task.Yield();
            ct.ThrowIfCancellationRequested();
            yield return new Row { Id = $"r{i}" };
        }
    }

    private static async IAsyncEnumerable<Row> WithNull([EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Yield();
        yield return new Row { Id = "a" };
        yield return null!;
    }

    private static async IAsyncEnumerable<Row> NotModifiedLate(IngestionContext ctx, [EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Yield();
        yield return new Row { Id = "a" };
        ctx.NotModified();
    }

    private static async IAsyncEnumerable<Row> RejectWithoutPosition(IngestionContext ctx, [EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Yield();
        ctx.Reject(new RejectedRecord("", "x", "bad"));
        yield break;
    }

    private static async IAsyncEnumerable<Row> NotModifiedFirst(IngestionContext ctx)
    {
        await Task.Yield();
        ctx.NotModified(new SourceCheckpoint(null) { ETag = "\"abc\"" });
        yield break;
    }

    private static async IAsyncEnumerable<Row> FailAfterTwo(IngestionContext ctx, [EnumeratorCancellation] CancellationToken ct)
    {
        await Task.Yield();
        yield return new Row { Id = "a" };
        ctx.Checkpoint(new SourceCheckpoint("a"));
        yield return new Row { Id = "b" };
        ctx.Reject(new RejectedRecord("row 3", "Value", "not a number"));
        throw new IngestionException("the server went away");
    }

    private static async IAsyncEnumerable<Row> Hang()
    {
        yield return new Row { Id = "first" };
        await new TaskCompletionSource().Task;
    }
}
