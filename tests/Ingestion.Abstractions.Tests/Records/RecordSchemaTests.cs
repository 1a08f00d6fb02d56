namespace Ingestion.Abstractions.Tests.Records;

public class RecordSchemaTests
{
    private sealed class Ticket
    {
        [RecordKey]
        public string Number { get; set; } = "";

        public DateTimeOffset IssuedAt { get; set; }

        public int? Amount { get; set; }

        public string? HTTPStatus { get; set; }

        [Column("place_name", MaxLength = 40)]
        public string Place { get; set; } = "";

        [IgnoreColumn]
        public object? Scratch { get; set; }
    }

    private sealed class Event
    {
        public string SourceId { get; set; } = "";

        public string Title { get; set; } = "";
    }

    private sealed class NoKey
    {
        public string Title { get; set; } = "";
    }

    private sealed class BadType
    {
        [RecordKey]
        public string Id { get; set; } = "";

        public List<int> Values { get; set; } = [];
    }

    [Fact]
    public void Typed_schema_maps_names_types_nullability_and_key()
    {
        var s = RecordSchema.FromType(typeof(Ticket));
        Assert.Equal(["number", "issued_at", "amount", "http_status", "place_name"], s.Columns.Select(c => c.Name));
        Assert.Equal(["number"], s.KeyColumns.Select(c => c.Name));
        Assert.Equal(ColumnType.TimestampTz, s.Columns[1].Type);
        Assert.True(s.Columns[2].IsNullable);
        Assert.False(s.Columns[1].IsNullable);
        Assert.True(s.Columns[3].IsNullable);
        Assert.False(s.Columns[0].IsNullable);
        Assert.Equal(40, s.Columns[4].MaxLength);
        Assert.False(s.HasSourceNameColumn);
    }

    [Fact]
    public void SourceId_gives_the_default_source_key()
    {
        var s = RecordSchema.FromType(typeof(Event));
        Assert.Equal(["source", "source_id"], s.KeyColumns.Select(c => c.Name));
        Assert.True(s.Columns[0].IsSourceName);
        Assert.True(s.HasSourceNameColumn);
    }

    [Fact]
    public void A_type_without_key_is_refused_with_its_name()
    {
        var e = Assert.Throws<ArgumentException>(() => RecordSchema.FromType(typeof(NoKey)));
        Assert.Contains(nameof(NoKey), e.Message);
        Assert.Contains("[RecordKey]", e.Message);
    }

    [Fact]
    public void An_unsupported_property_type_names_the_property()
    {
        var e = Assert.Throws<ArgumentException>(() => RecordSchema.FromType(typeof(BadType)));
        Assert.Contains("BadType.Values", e.Message);
    }

    [Fact]
    public void Dynamic_schema_checks_duplicates_and_keys()
    {
        Assert.Throws<ArgumentException>(() => RecordSchema.Create([new("a", ColumnType.Text), new("a", ColumnType.Int32)], ["a"]));
        Assert.Throws<ArgumentException>(() => RecordSchema.Create([new("a", ColumnType.Text)], ["b"]));
        Assert.Throws<ArgumentException>(() => RecordSchema.Create([new("a", ColumnType.Text)]));
        var s = RecordSchema.Create([new("source_id", ColumnType.Text), new("v", ColumnType.Float64)]);
        Assert.Equal(["source", "source_id", "v"], s.Columns.Select(c => c.Name));
        var r = new DynamicRecord(s) { ["source_id"] = "x", ["v"] = 1.5 };
        Assert.Equal(1.5, r[2]);
        Assert.Throws<KeyNotFoundException>(() => r["nope"]);
    }

    [Theory]
    [InlineData("StartsAt", "starts_at")]
    [InlineData("HTTPCode", "http_code")]
    [InlineData("Line2Text", "line2_text")]
    [InlineData("id", "id")]
    public void Snake_case(string input, string expected) => Assert.Equal(expected, RecordSchema.ToSnakeCase(input));

    [Fact]
    public void Counts_add_up_and_state_applies_checkpoints()
    {
        var c = new IngestionCounts { Read = 5, Created = 2, Updated = 1, Unchanged = 1, Duplicates = 0, Rejected = 1 };
        Assert.True(c.AddsUp);
        Assert.False((c with { Read = 6 }).AddsUp);
        var s = SourceState.Empty.Apply(new SourceCheckpoint("10") { ETag = "\"a\"", Values = new Dictionary<string, string> { ["k"] = "1" } });
        s = s.Apply(new SourceCheckpoint(null) { Values = new Dictionary<string, string> { ["j"] = "2" } });
        Assert.Equal("10", s.Cursor);
        Assert.Equal("\"a\"", s.ETag);
        Assert.Equal(2, s.Values.Count);
    }
}
