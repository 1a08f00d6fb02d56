using System.Text;
using Ingestion.Sources.Csv;
using Ingestion.Sources.Mapping;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.Tests.Csv;

/// <summary>CSV files as open-data portals write them (issue 17, CSV).</summary>
public sealed class CsvRealWorldTests : CsvTestFiles
{
    [Fact]
    public async Task U_FFFD_written_in_valid_UTF_8_is_a_character_and_only_undecodable_bytes_are_rejected()
    {
        var bytes = Encoding.UTF8.GetBytes("source_id,name\n1,Caf\uFFFD (as exported)\n2,Caf")
            .Concat(new byte[] { 0xE9 })
            .Concat(Encoding.UTF8.GetBytes("\n3,Café\n"))
            .ToArray();
        var (records, context) = await ReadAsync(new CsvSourceOptions { Location = WriteBytes(bytes) });

        Assert.Equal(["1", "3"], records.Select(r => (string)r["source_id"]!));
        Assert.Equal("Caf\uFFFD (as exported)", records[0]["name"]);
        var reject = Assert.Single(context.Rejected);
        Assert.Equal("line 3", reject.Position);
        Assert.Contains("not valid UTF-8", reject.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_Key_and_without_a_source_id_column_the_source_fails_at_start_naming_Key()
    {
        await using var harness = new RunnerHarness(b => b.AddCsvSource("parks", o =>
        {
            o.Location = "parks.csv";
            o.Columns.Add(new ColumnMappingOptions { Name = "park_id" });
            o.Columns.Add(new ColumnMappingOptions { Name = "name" });
        }));
        var e = Assert.Throws<OptionsValidationException>(() => harness.Runner);
        Assert.Contains("Ingestion:Sources:parks:Key is required", string.Join('\n', e.Failures), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Without_Key_and_columns_from_a_header_without_source_id_the_run_fails_before_any_record_naming_Key()
    {
        var path = WriteBytes(Encoding.UTF8.GetBytes("park_id,name\n1,La Fontaine\n"));
        await using var harness = new RunnerHarness(b => b.AddCsvSource("parks", o => o.Location = path));
        var result = await harness.RunAsync("parks");

        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Equal(0, result.Counts.Read);
        Assert.Contains("Ingestion:Sources:parks:Key", result.Error!.Message, StringComparison.Ordinal);
        Assert.Contains("park_id, name", result.Error!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_quoted_empty_field_is_the_empty_string_and_an_unquoted_one_null_as_in_PostgreSQL_COPY()
    {
        var path = WriteBytes(Encoding.UTF8.GetBytes("source_id,name,note,count\n1,\"\",,\"\"\n2, \"\" ,\"x\",\n"));
        var (records, context) = await ReadAsync(new CsvSourceOptions { Location = path, TrimWhitespace = true, Columns = { Text("source_id"), Text("name"), Text("note"), new() { Name = "count", Type = ColumnType.Int32 } } });

        Assert.Empty(context.Rejected);
        Assert.Equal("", records[0]["name"]);
        Assert.Null(records[0]["note"]);
        Assert.Null(records[0]["count"]);
        Assert.Equal("", records[1]["name"]);

        var swapped = new CsvSourceOptions { Location = path, QuotedEmpty = CsvEmptyValue.Null, UnquotedEmpty = CsvEmptyValue.EmptyString, Columns = { Text("source_id"), Text("name"), Text("note") } };
        var (other, _) = await ReadAsync(swapped);
        Assert.Null(other[0]["name"]);
        Assert.Equal("", other[0]["note"]);
    }

    [Fact]
    public async Task A_required_column_rejects_a_quoted_empty_value_too()
    {
        var path = WriteBytes(Encoding.UTF8.GetBytes("source_id,name\n1,\"\"\n2,b\n"));
        var options = new CsvSourceOptions { Location = path, Columns = { Text("source_id"), new() { Name = "name", Required = true } } };
        var (records, context) = await ReadAsync(options);

        Assert.Equal("2", Assert.Single(records)["source_id"]);
        Assert.Equal("name", Assert.Single(context.Rejected).Field);
    }

    private static ColumnMappingOptions Text(string name) => new() { Name = name };
}
