using System.Globalization;
using System.Text;
using CsvHelper;
using Ingestion.Sources.Csv;
using Ingestion.Sources.Http;
using Ingestion.Sources.Mapping;
using Ingestion.Sources.Tests.Http;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.Tests.Csv;

[CsvRecord]
public sealed partial class TicketRow
{
    [RecordKey]
    public string Id { get; set; } = "";

    public DateOnly Date { get; set; }

    public int Amount { get; set; }

    public string? Place { get; set; }
}

public sealed class CsvSourceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ingestion-csv-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text, Encoding? encoding = null)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, (encoding ?? new UTF8Encoding(false)).GetBytes(text));
        return path;
    }

    private static void TicketColumns(CsvSourceOptions o)
    {
        o.Columns.Add(new ColumnMappingOptions { Name = "id", From = "Id" });
        o.Columns.Add(new ColumnMappingOptions { Name = "issued_on", From = "Date", Type = ColumnType.Date, Format = "yyyy-MM-dd" });
        o.Columns.Add(new ColumnMappingOptions { Name = "amount", From = "Amount", Type = ColumnType.Int32, Required = true });
        o.Columns.Add(new ColumnMappingOptions { Name = "place", From = "Place" });
        o.Key.Add("id");
    }

    private static Task<(List<DynamicRecord> Records, TestIngestionContext Context)> ReadDynamicAsync(CsvSourceOptions options, SourceState? state = null) =>
        CsvTestFiles.ReadAsync(options, state);

    [Fact]
    public async Task Reads_typed_columns_and_rejects_bad_lines_with_their_line_and_text()
    {
        var path = Write("tickets.csv",
            "Id,Date,Amount,Place\n" +
            "T1,2024-01-05,150,\"Rue Sainte-Catherine, Montréal\"\n" +
            "T2,2024-01-06,abc,Québec\n" +
            "T3,2024-01-07,90,\"multi\nline\"\n" +
            "T4,2024-13-01,20,Laval\n" +
            "T5,2024-01-09,\"7\"x,Lévis\n" +
            "T6,2024-01-10,10\n" +
            "T7,2024-01-11,,Gatineau\n" +
            "T8,2024-01-12,42,Sherbrooke\n");
        var options = new CsvSourceOptions { Location = path };
        TicketColumns(options);
        var (records, context) = await ReadDynamicAsync(options);

        Assert.Equal(["T1", "T3", "T8"], records.Select(r => (string)r["id"]!));
        Assert.Equal(new DateOnly(2024, 1, 5), records[0]["issued_on"]);
        Assert.Equal(150, records[0]["amount"]);
        Assert.Equal("Rue Sainte-Catherine, Montréal", records[0]["place"]);
        Assert.Equal("multi\nline", records[1]["place"]);

        var rejects = context.Rejected.OrderBy(r => int.Parse(r.Position[5..], CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(5, rejects.Count);
        Assert.Equal("line 3", rejects[0].Position);
        Assert.Equal("amount", rejects[0].Field);
        Assert.Contains("'abc' is not a 32-bit integer", rejects[0].Reason, StringComparison.Ordinal);
        Assert.Equal("T2,2024-01-06,abc,Québec", rejects[0].RawValue);
        Assert.Equal("line 6", rejects[1].Position);
        Assert.Equal("issued_on", rejects[1].Field);
        Assert.Equal("line 7", rejects[2].Position);
        Assert.Contains("quote", rejects[2].Reason, StringComparison.OrdinalIgnoreCase);
        Assert.Equal("line 8", rejects[3].Position);
        Assert.Contains("number of fields", rejects[3].Reason, StringComparison.Ordinal);
        Assert.Equal("line 9", rejects[4].Position);
        Assert.Contains("required", rejects[4].Reason, StringComparison.Ordinal);

        var done = Assert.Single(context.Checkpoints);
        Assert.NotNull(done.ETag);
    }

    [Fact]
    public async Task Reads_a_semicolon_file_in_windows_1252_with_a_french_culture()
    {
        var path = Write("fr.csv", "code;montant;ville\nA;12,5;Montréal\nB;1 234,75;Trois-Rivières\n", CodePagesEncodingProvider.Instance.GetEncoding(1252));
        var options = new CsvSourceOptions { Location = path, Delimiter = ";", Encoding = "windows-1252", Culture = "fr-CA" };
        options.Columns.Add(new ColumnMappingOptions { Name = "code" });
        options.Columns.Add(new ColumnMappingOptions { Name = "montant", Type = ColumnType.Decimal });
        options.Columns.Add(new ColumnMappingOptions { Name = "ville" });
        options.Key.Add("code");
        var (records, context) = await ReadDynamicAsync(options);
        Assert.Empty(context.Rejected);
        Assert.Equal("Montréal", records[0]["ville"]);
        Assert.Equal("Trois-Rivières", records[1]["ville"]);
        Assert.Equal(12.5m, records[0]["montant"]);
        Assert.Equal(1234.75m, records[1]["montant"]);

        // Read as UTF-8 (the default), the same bytes are caught instead of stored as garbage.
        var wrong = new CsvSourceOptions { Location = path, Delimiter = ";", Culture = "fr-CA" };
        wrong.Columns.Add(new ColumnMappingOptions { Name = "code" });
        wrong.Columns.Add(new ColumnMappingOptions { Name = "ville" });
        wrong.Key.Add("code");
        var (kept, bad) = await ReadDynamicAsync(wrong);
        Assert.Empty(kept);
        Assert.Equal(2, bad.Rejected.Count);
        Assert.All(bad.Rejected, r => Assert.Contains("not valid UTF-8", r.Reason, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_columns_every_header_becomes_a_text_column()
    {
        var path = Write("any.csv", "Source ID,Nom de la rue,Nom de la rue\n1,A,B\n");
        var (records, _) = await ReadDynamicAsync(new CsvSourceOptions { Location = path });
        var record = Assert.Single(records);
        Assert.Equal(["source", "source_id", "nom_de_la_rue", "nom_de_la_rue_2"], record.Schema.Columns.Select(c => c.Name));
        Assert.Equal("B", record["nom_de_la_rue_2"]);
    }

    [Fact]
    public async Task A_missing_header_fails_naming_it()
    {
        var path = Write("h.csv", "a,b\n1,2\n");
        var options = new CsvSourceOptions { Location = path };
        options.Columns.Add(new ColumnMappingOptions { Name = "c" });
        options.Key.Add("c");
        var e = await Assert.ThrowsAsync<IngestionException>(() => ReadDynamicAsync(options));
        Assert.Contains("no column 'c'", e.Message, StringComparison.Ordinal);
        Assert.Contains("'a', 'b'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Typed_records_are_read_with_the_generated_mapper()
    {
        var path = Write("typed.csv", "Id,Date,Amount,Place\nT1,2024-01-05,150,Laval\nT2,2024-01-06,oops,Lévis\nT3,2024-01-07,7,\n");
        var services = new ServiceCollection().AddSourceHttp().BuildServiceProvider();
        var source = new CsvSource<TicketRow>(services.GetRequiredService<ISourceHttpClientFactory>(), new StaticOptions<CsvSourceOptions>(new CsvSourceOptions { Location = path }));
        var context = new TestIngestionContext();
        var records = new List<TicketRow>();
        await foreach (var r in source.ReadAsync(context, default))
        {
            records.Add(r);
        }

        Assert.Equal(["T1", "T3"], records.Select(r => r.Id));
        Assert.Equal(150, records[0].Amount);
        var reject = Assert.Single(context.Rejected);
        Assert.Equal("line 3", reject.Position);
        Assert.Equal("Amount", reject.Field);
        Assert.Equal("T2,2024-01-06,oops,Lévis", reject.RawValue);
    }

    [Fact]
    public async Task Runs_through_the_runner_and_an_unchanged_file_is_not_modified()
    {
        var path = Write("run.csv", "Id,Date,Amount,Place\nT1,2024-01-05,150,Laval\nT2,2024-01-06,x,Lévis\nT3,2024-01-07,7,\n");
        await using var harness = new RunnerHarness(b => b.AddCsvSource("tickets", o =>
        {
            o.Location = path;
            TicketColumns(o);
        }, s => s.MaxRejected = 10));
        var first = await harness.RunAsync("tickets");
        Assert.Equal(IngestionStatus.PartiallySucceeded, first.Status);
        Assert.Equal(2, first.Counts.Created);
        Assert.Equal(1, first.Counts.Rejected);
        Assert.Equal(2, harness.Sink.GetTable("tickets").Count);

        var second = await harness.RunAsync("tickets");
        Assert.Equal(IngestionStatus.NotModified, second.Status);

        var full = await harness.RunAsync("tickets", IngestionMode.FullRefresh);
        Assert.Equal(2, full.Counts.Unchanged);
    }

    [Fact]
    public async Task Reads_a_gzipped_csv_over_http_and_a_304_is_not_modified()
    {
        var body = SourceHttpClientTests.Gzip(Encoding.UTF8.GetBytes("Id,Date,Amount,Place\nT1,2024-01-05,150,Laval\n"));
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            if (ctx.Request.Headers.IfNoneMatch == "\"t1\"")
            {
                ctx.Response.StatusCode = 304;
                return;
            }

            ctx.Response.ContentType = "text/csv; charset=utf-8";
            ctx.Response.Headers.ETag = "\"t1\"";
            ctx.Response.Headers.ContentEncoding = "gzip";
            await ctx.Response.Body.WriteAsync(body);
        });
        await using var harness = new RunnerHarness(b => b.AddCsvSource("remote", o =>
        {
            o.Location = server.Url("tickets.csv").AbsoluteUri;
            TicketColumns(o);
        }));
        var first = await harness.RunAsync("remote");
        Assert.Equal(IngestionStatus.Succeeded, first.Status);
        Assert.Equal(1, first.Counts.Created);
        Assert.Equal("\"t1\"", (await harness.StateAsync("remote")).ETag);
        var second = await harness.RunAsync("remote");
        Assert.Equal(IngestionStatus.NotModified, second.Status);
        Assert.Equal(2, server.RequestCount);
    }

    [Fact]
    public async Task Invalid_options_fail_at_start_naming_the_setting()
    {
        await using var harness = new RunnerHarness(b => b.AddCsvSource("bad", o =>
        {
            o.Delimiter = ";;";
            o.Encoding = "klingon-8";
        }));
        var e = Assert.Throws<OptionsValidationException>(() => harness.Runner);
        var all = string.Join('\n', e.Failures);
        Assert.Contains("Ingestion:Sources:bad:Location", all, StringComparison.Ordinal);
        Assert.Contains("Ingestion:Sources:bad:Delimiter", all, StringComparison.Ordinal);
        Assert.Contains("klingon-8", all, StringComparison.Ordinal);
    }
}

/// <summary>An options monitor that returns one instance for every name.</summary>
internal sealed class StaticOptions<T>(T value) : IOptionsMonitor<T>
{
    public T CurrentValue => value;

    public T Get(string? name) => value;

    public IDisposable? OnChange(Action<T, string?> listener) => null;
}
