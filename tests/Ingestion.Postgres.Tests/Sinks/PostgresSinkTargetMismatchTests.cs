using Ingestion.Sinks;
using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// Targets the configuration points at wrongly: a schema that does not exist, a schema written into the table name,
/// and a user-made geometry column whose SRID or geometry type differs from what the records carry (WGS 84 points and
/// shapes). Each fails with an error naming the source and the setting, or the record, its key and the column;
/// nothing of the batch lands.
/// </summary>
public sealed class PostgresSinkTargetMismatchTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>, IAsyncLifetime
{
    private const string Square = """{"type":"Polygon","coordinates":[[[-73.6,45.5],[-73.5,45.5],[-73.5,45.6],[-73.6,45.6],[-73.6,45.5]]]}""";

    public Task InitializeAsync() => db.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS postgis");

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_schema_that_does_not_exist_fails_naming_the_source_and_the_setting()
    {
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("no-schema", o => o.Schema = "nosuch"));
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default));
        Assert.Equal(("no-schema", "Schema"), (e.SourceName, e.Field));
        Assert.Contains("the target schema 'nosuch' (Ingestion:Sources:no-schema:Schema) does not exist", e.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname = 'nosuch'"));
    }

    [Fact]
    public async Task A_schema_written_into_the_table_name_is_refused_with_the_settings_to_use()
    {
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("dotted", o => o.Table = "reporting.readings"));
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default));
        Assert.Equal(("dotted", "Table"), (e.SourceName, e.Field));
        Assert.Contains("set Ingestion:Sources:dotted:Schema to 'reporting' and Table to 'readings'", e.Message, StringComparison.Ordinal);

        // Nothing was created under the dotted name in the default schema.
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'reporting.readings'"));
    }

    [Fact]
    public async Task A_geometry_column_of_another_srid_fails_the_batch_naming_the_record_the_key_and_the_column()
    {
        await db.ExecuteAsync("CREATE TABLE lambert_places (id text PRIMARY KEY, location geometry(Point, 2154), shape geometry(Polygon, 4326))");
        await db.ExecuteAsync("INSERT INTO lambert_places (id) VALUES ('before')");
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Place>(Run<Place>("lambert", o => { o.Table = "lambert_places"; o.CreateTable = false; }));
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Place>([new() { Id = "a" }, new() { Id = "b", Location = new GeoPoint(-73.5, 45.5) }]), default));
        Assert.Equal(("lambert", "record 2", "location"), (e.SourceName, e.Position, e.Field));
        Assert.Contains("record 2 (key id='b'), column 'location'", e.Message, StringComparison.Ordinal);
        Assert.Contains("SRID", e.Message, StringComparison.Ordinal);
        Assert.Equal("before", await db.ScalarAsync<string>("SELECT string_agg(id, ',') FROM lambert_places"));
    }

    [Fact]
    public async Task A_shape_of_another_geometry_type_fails_the_batch_naming_the_record_and_the_column()
    {
        await db.ExecuteAsync("CREATE TABLE point_only_places (id text PRIMARY KEY, location geometry(Point, 4326), shape geometry(Point, 4326))");
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Place>(Run<Place>("point-only", o => { o.Table = "point_only_places"; o.CreateTable = false; }));
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Place>([new() { Id = "a", Location = new GeoPoint(-73.5, 45.5) }, new() { Id = "b" }, new() { Id = "c", Shape = new GeoJsonGeometry(Square) }]), default));
        Assert.Equal(("point-only", "record 3", "shape"), (e.SourceName, e.Position, e.Field));
        Assert.Contains("Geometry type (Polygon) does not match column type (Point)", e.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM point_only_places"));
    }
}
