using System.Globalization;
using System.Text;
using Ingestion.Sources.Csv;
using Ingestion.Sources.Mapping;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.Tests.Csv;

/// <summary>One unclosed quote costs one record, never the rest of the file (issue 14 §3, issue 17 CSV).</summary>
public sealed class CsvQuoteRecoveryTests : CsvTestFiles
{
    private string Write(string text) => WriteBytes(new UTF8Encoding(false).GetBytes(text));

    /// <summary>A header and data lines 2..<paramref name="lines"/> of the form <c>n,name n,note n</c>; <paramref name="change"/> rewrites some.</summary>
    private static string Numbered(int lines, Func<int, string?>? change = null, string newline = "\n")
    {
        var sb = new StringBuilder("id,name,note").Append(newline);
        for (var n = 2; n <= lines; n++)
        {
            sb.Append(change?.Invoke(n) ?? $"{n},name {n},note {n}").Append(newline);
        }

        return sb.ToString();
    }

    private static void Columns(CsvSourceOptions o)
    {
        o.Columns.Add(new ColumnMappingOptions { Name = "id", Type = ColumnType.Int32 });
        o.Columns.Add(new ColumnMappingOptions { Name = "name" });
        o.Columns.Add(new ColumnMappingOptions { Name = "note" });
        o.Key.Add("id");
    }

    private static CsvSourceOptions Options(string path, Action<CsvSourceOptions>? configure = null)
    {
        var o = new CsvSourceOptions { Location = path };
        Columns(o);
        configure?.Invoke(o);
        return o;
    }

    private static List<int> Ids(List<DynamicRecord> records) => records.Select(r => (int)r["id"]!).ToList();

    private static List<int> Expected(int lines, params int[] missing) => Enumerable.Range(2, lines - 1).Except(missing).ToList();

    [Fact]
    public async Task An_unclosed_quote_on_line_10_of_1000_rejects_line_10_and_the_run_reads_the_other_998()
    {
        var path = Write(Numbered(1000, n => n == 10 ? "10,\"never closed,note 10" : null));
        await using var harness = new RunnerHarness(b => b.AddCsvSource("q", o =>
        {
            o.Location = path;
            Columns(o);
        }, s => s.MaxRejected = 10));
        var result = await harness.RunAsync("q");

        Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);
        Assert.Equal(999, result.Counts.Read);
        Assert.Equal(998, result.Counts.Created);
        Assert.Equal(1, result.Counts.Rejected);
        Assert.Equal(998, harness.Sink.GetTable("q").Count);
    }

    [Fact]
    public async Task The_rejected_record_names_the_line_where_the_quote_opened_and_the_field()
    {
        var (records, context) = await ReadAsync(Options(Write(Numbered(1000, n => n == 10 ? "10,\"never closed,note 10" : null))));

        Assert.Equal(Expected(1000, 10), Ids(records));
        var reject = Assert.Single(context.Rejected);
        Assert.Equal("line 10", reject.Position);
        Assert.Equal("name", reject.Field);
        Assert.Contains("field 'name' (column 2) on line 10 is still open at the end of the file", reject.Reason, StringComparison.Ordinal);
        Assert.Contains("resumes on line 11", reject.Reason, StringComparison.Ordinal);
        Assert.Equal("10,\"never closed,note 10", reject.RawValue);
    }

    [Fact]
    public async Task A_later_quoted_field_does_not_close_the_stray_quote_text_after_it_breaks_the_span()
    {
        // The quote opened on line 10 would be "closed" by the quote before y on line 20, followed by text.
        var path = Write(Numbered(40, n => n switch
        {
            10 => "10,\"never closed,note 10",
            20 => "20,\"y\" z,note 20",
            _ => null,
        }));
        var (records, context) = await ReadAsync(Options(path));

        Assert.Equal(Expected(40, 10, 20), Ids(records));
        var rejects = context.Rejected.OrderBy(r => r.Position.Length).ThenBy(r => r.Position, StringComparer.Ordinal).ToList();
        Assert.Equal(["line 10", "line 20"], rejects.Select(r => r.Position));
        Assert.Contains("closing quote is followed by text", rejects[0].Reason, StringComparison.Ordinal);
        Assert.Contains("text after the closing quote", rejects[1].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_quote_closed_cleanly_many_lines_later_is_cut_at_MaxFieldLines()
    {
        // Lines 10 to 20 would make one record of three fields: only the line limit tells it apart.
        var path = Write(Numbered(40, n => n switch
        {
            10 => "10,\"opened,note 10",
            20 => "20,closed\",note 20",
            _ => null,
        }));
        var (records, context) = await ReadAsync(Options(path, o => o.MaxFieldLines = 5));

        Assert.Equal(Expected(40, 10), Ids(records));
        Assert.Equal("closed\"", records.Single(r => (int)r["id"]! == 20)["name"]);
        var reject = Assert.Single(context.Rejected);
        Assert.Equal("line 10", reject.Position);
        Assert.Contains("spans more than 5 lines (MaxFieldLines)", reject.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_record_of_several_lines_with_another_field_count_than_the_header_is_a_broken_quote()
    {
        var path = Write(Numbered(40, n => n switch
        {
            10 => "10,\"opened,note 10",
            20 => "20,closed\",note 20,extra",
            _ => null,
        }));
        var (records, context) = await ReadAsync(Options(path));

        Assert.Equal(Expected(40, 10, 20), Ids(records));
        Assert.Equal(["line 10", "line 20"], context.Rejected.Select(r => r.Position).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Real_quoting_is_read_a_multi_line_field_a_doubled_quote_and_a_quote_inside_an_unquoted_field()
    {
        var path = Write(
            "id,name,note\r\n" +
            "1,\"Parc \"\"La Fontaine\"\"\",\"line one\r\nline two\r\nline three\"\r\n" +
            "2,45°30'N 73°34'W,37.8\"N\r\n" +
            "3,\"a, b\",  \"c\"\r\n");
        var (records, context) = await ReadAsync(Options(path));

        Assert.Empty(context.Rejected);
        Assert.Equal([1, 2, 3], Ids(records));
        Assert.Equal("Parc \"La Fontaine\"", records[0]["name"]);
        Assert.Equal("line one\r\nline two\r\nline three", records[0]["note"]);
        Assert.Equal("37.8\"N", records[1]["note"]);
        Assert.Equal("a, b", records[2]["name"]);
    }

    [Fact]
    public async Task A_quoted_field_longer_than_MaxFieldBytes_is_rejected_and_the_next_line_read()
    {
        var big = new string('x', 5000);
        var path = Write(Numbered(30, n => n == 5 ? $"5,\"{big}\",note 5" : null));
        var (records, context) = await ReadAsync(Options(path, o => o.MaxFieldBytes = 1000));

        Assert.Equal(Expected(30, 5), Ids(records));
        var reject = Assert.Single(context.Rejected);
        Assert.Equal("line 5", reject.Position);
        Assert.Contains("longer than 1000 bytes (MaxFieldBytes)", reject.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Recovery_holds_across_buffer_boundaries_in_a_large_crlf_file()
    {
        // About 4 MB: several reads of the guard and of the reader; unclosed quotes at the start, middle and end.
        const int Lines = 100_000;
        var broken = new HashSet<int> { 3, 50_000, 99_999 };
        var path = Write(Numbered(Lines, n => broken.Contains(n) ? $"{n},\"open {n},note {n}" : $"{n},\"quoted\r\nname {n}\",note {n}", "\r\n"));
        var (records, context) = await ReadAsync(Options(path, o => o.MaxFieldLines = 3));

        Assert.Equal(Expected(Lines, [.. broken]), Ids(records));
        // Records take two lines each, the broken ones one: record 3 starts on line 4, 50000 on 99997, 99999 on 199994.
        Assert.Equal(["line 4", "line 99997", "line 199994"], context.Rejected.Select(r => r.Position).OrderBy(p => int.Parse(p[5..], CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task An_unclosed_quote_in_the_header_fails_the_run_naming_line_1()
    {
        var path = Write("id,\"name,note\n1,a,b\n");
        var e = await Assert.ThrowsAsync<IngestionException>(() => ReadAsync(Options(path)));
        Assert.Equal("line 1", e.Position);
        Assert.Contains("header", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Limits_are_validated_at_start_naming_the_setting()
    {
        await using var harness = new RunnerHarness(b => b.AddCsvSource("bad", o =>
        {
            o.Location = "x.csv";
            o.MaxFieldLines = 0;
            o.MaxFieldBytes = -1;
        }));
        var e = Assert.Throws<OptionsValidationException>(() => harness.Runner);
        var all = string.Join('\n', e.Failures);
        Assert.Contains("Ingestion:Sources:bad:MaxFieldLines", all, StringComparison.Ordinal);
        Assert.Contains("Ingestion:Sources:bad:MaxFieldBytes", all, StringComparison.Ordinal);
    }
}
