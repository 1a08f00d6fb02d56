using Ingestion.Sinks;
using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>A place with a point from longitude/latitude and a shape from GeoJSON.</summary>
public sealed class Place
{
    [RecordKey]
    public string Id { get; set; } = "";

    public GeoPoint? Location { get; set; }

    public GeoJsonGeometry? Shape { get; set; }
}

/// <summary>Geometry columns written to PostGIS (installed in this class's database).</summary>
public class PostgresSinkPostGisTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>, IAsyncLifetime
{
    private const string Square = """{"type":"Polygon","coordinates":[[[-73.6,45.5],[-73.5,45.5],[-73.5,45.6],[-73.6,45.6],[-73.6,45.5]]]}""";

    public Task InitializeAsync() => db.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS postgis");

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task Points_from_longitude_latitude_and_shapes_from_GeoJSON_land_as_SRID_4326_geometries()
    {
        await using var h = new SinkHarness(db);
        var places = new List<Place>
        {
            new() { Id = "mtl", Location = new GeoPoint(-73.5673, 45.5017), Shape = new GeoJsonGeometry(Square) },
            new() { Id = "line", Shape = new GeoJsonGeometry("""{"type":"LineString","coordinates":[[0,0],[1.5,2]]}""") },
            new() { Id = "multi", Shape = new GeoJsonGeometry("""{"type":"MultiPoint","coordinates":[[1,2],[3,4]]}""") },
        };
        await using (var w = await h.OpenAsync<Place>(Run<Place>("places", o => o.Table = "places")))
        {
            Assert.Equal(3L, (await w.WriteBatchAsync(h.Batch<Place>(places), default)).Created);
            await w.CompleteAsync(default);
        }

        Assert.Equal("geometry(Geometry,4326)", await db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'places'::regclass AND attname = 'location'"));
        Assert.Equal("POINT(-73.5673 45.5017)|4326", await db.ScalarAsync<string>("SELECT ST_AsText(location) || '|' || ST_SRID(location) FROM places WHERE id = 'mtl'"));
        Assert.Equal("POLYGON((-73.6 45.5,-73.5 45.5,-73.5 45.6,-73.6 45.6,-73.6 45.5))|4326", await db.ScalarAsync<string>("SELECT ST_AsText(shape) || '|' || ST_SRID(shape) FROM places WHERE id = 'mtl'"));
        Assert.True(await db.ScalarAsync<bool>("SELECT ST_Contains(shape, location) FROM places WHERE id = 'mtl'"));
        Assert.Equal("LINESTRING(0 0,1.5 2)", await db.ScalarAsync<string>("SELECT ST_AsText(shape) FROM places WHERE id = 'line'"));
        Assert.Equal("MULTIPOINT((1 2),(3 4))", await db.ScalarAsync<string>("SELECT ST_AsText(shape) FROM places WHERE id = 'multi'"));
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM places WHERE id <> 'mtl' AND location IS NOT NULL"));

        // The same geometries again are unchanged; a moved point is an update.
        places[1].Shape = new GeoJsonGeometry("""{"type":"LineString","coordinates":[[0,0],[1.5,2]]}""");
        places[2].Location = new GeoPoint(2, 3);
        await using (var w = await h.OpenAsync<Place>(Run<Place>("places", o => o.Table = "places")))
        {
            var r = await w.WriteBatchAsync(h.Batch<Place>(places), default);
            Assert.Equal((0L, 1L, 2L), (r.Created, r.Updated, r.Unchanged));
            await w.CompleteAsync(default);
        }

        Assert.Equal("POINT(2 3)", await db.ScalarAsync<string>("SELECT ST_AsText(location) FROM places WHERE id = 'multi'"));
    }

    [Fact]
    public async Task Dynamic_records_take_GeoJSON_text_and_points_into_a_table_the_user_made()
    {
        await db.ExecuteAsync("CREATE TABLE radars (id int PRIMARY KEY, geom geometry(Geometry, 4326))");
        var schema = RecordSchema.Create([new ColumnSchema("id", ColumnType.Int32), new ColumnSchema("geom", ColumnType.Geometry)], ["id"]);
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("radars", o => { o.Table = "radars"; o.CreateTable = false; })))
        {
            var r = await w.WriteBatchAsync(
                h.Batch<DynamicRecord>(
                [
                    new(schema, [1, """{"type":"Point","coordinates":[-71.2,46.8]}"""]),
                    new(schema, [2, new GeoPoint(-73.75, 45.45)]),
                    new(schema, [3, null]),
                ]),
                default);
            Assert.Equal(3L, r.Created);
            await w.CompleteAsync(default);
        }

        Assert.Equal("1=POINT(-71.2 46.8)/4326,2=POINT(-73.75 45.45)/4326,3=", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || coalesce(ST_AsText(geom) || '/' || ST_SRID(geom), ''), ',' ORDER BY id) FROM radars"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task A_value_the_column_refuses_during_the_copy_fails_the_batch_or_within_the_budget_is_a_rejected_record(int budget)
    {
        // The client cannot know the column takes points only: the server refuses the polygon during the COPY.
        var table = $"stations_{budget}";
        await db.ExecuteAsync($"CREATE TABLE {table} (id int PRIMARY KEY, geom geometry(Point, 4326), _ingestion_hash bigint)");
        var schema = RecordSchema.Create([new ColumnSchema("id", ColumnType.Int32), new ColumnSchema("geom", ColumnType.Geometry)], ["id"]);
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>(table, o => { o.Table = table; o.CreateTable = false; }));
        var batch = h.Batch<DynamicRecord>(
        [
            new(schema, [1, new GeoPoint(-71.2, 46.8)]),
            new(schema, [2, new GeoJsonGeometry(Square)]),
            new(schema, [3, new GeoPoint(-73.75, 45.45)]),
        ],
            budget);

        if (budget == 0)
        {
            var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(batch, default));
            Assert.Equal("record 2", e.Position);
            Assert.Equal("geom", e.Field);
            Assert.Contains($"record 2 (key id=2), column 'geom': table public.{table} refuses the value", e.Message);
            Assert.Contains("Nothing of this batch was written", e.Message);
            Assert.Equal(0L, await db.ScalarAsync<long>($"SELECT count(*) FROM {table}"));
            return;
        }

        var r = await w.WriteBatchAsync(batch, default);
        await w.CompleteAsync(default);

        Assert.Equal(2L, r.Created);
        var rejected = Assert.Single(r.Rejected);
        Assert.Equal(("record 2", "geom"), (rejected.Position, rejected.Field));
        Assert.Contains($"Table public.{table} refuses the value of column 'geom'", rejected.Reason);
        Assert.Contains("Polygon", rejected.RawValue);
        Assert.Equal("1,3", await db.ScalarAsync<string>($"SELECT string_agg(id::text, ',' ORDER BY id) FROM {table}"));
        Assert.Equal(1L, await db.ScalarAsync<long>($"SELECT count(*) FROM ingestion.rejected_records WHERE position = 'record 2' AND field = 'geom' AND raw_value LIKE '%Polygon%'"));
    }

    [Fact]
    public async Task Invalid_points_and_geometries_are_rejected_records()
    {
        await using var h = new SinkHarness(db);
        SinkBatchResult r;
        await using (var w = await h.OpenAsync<Place>(Run<Place>("bad-places", o => o.Table = "bad_places")))
        {
            r = await w.WriteBatchAsync(
                h.Batch<Place>(
                [
                    new() { Id = "ok", Location = new GeoPoint(0, 0) },
                    new() { Id = "lon", Location = new GeoPoint(200, 45) },
                    new() { Id = "nan", Location = new GeoPoint(double.NaN, 45) },
                    new() { Id = "json", Shape = new GeoJsonGeometry("{not json") },
                    new() { Id = "type", Shape = new GeoJsonGeometry("""{"type":"Circle","coordinates":[0,0]}""") },
                ],
                budget: 4),
                default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(1L, r.Created);
        Assert.Equal(["record 2|location", "record 3|location", "record 4|shape", "record 5|shape"], r.Rejected.Select(x => $"{x.Position}|{x.Field}").ToArray());
        Assert.Contains("Point (200, 45) is not a valid WGS 84 longitude/latitude", r.Rejected[0].Reason);
        Assert.StartsWith("Geometry is not valid GeoJSON: ", r.Rejected[2].Reason);
        Assert.Contains("unknown geometry type 'Circle'", r.Rejected[3].Reason);
        Assert.Equal("ok", await db.ScalarAsync<string>("SELECT string_agg(id, ',') FROM bad_places"));
    }
}

/// <summary>A database without PostGIS: geometry columns fail with a clear error before any row is written.</summary>
public class PostgresSinkWithoutPostGisTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task A_geometry_column_without_the_PostGIS_extension_is_a_clear_error()
    {
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'"));
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<Place>(Run<Place>("no-gis", o => o.Table = "no_gis")))
        {
            var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Place>([new() { Id = "a", Location = new GeoPoint(1, 2) }]), default));
            Assert.Equal(("no-gis", "location"), (e.SourceName, e.Field));
            Assert.Contains("column 'location' is a geometry, but the PostGIS extension is not installed", e.Message);
            Assert.Contains("CREATE EXTENSION postgis", e.Message);
        }

        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'no_gis'"));

        // An existing table gaining a geometry column (schema evolution) fails the same way.
        await db.ExecuteAsync("CREATE TABLE no_gis_evolve (id text PRIMARY KEY)");
        await using (var w = await h.OpenAsync<Place>(Run<Place>("no-gis-evolve", o => { o.Table = "no_gis_evolve"; o.SchemaEvolution = SchemaEvolution.Evolve; })))
        {
            var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Place>([new() { Id = "a" }]), default));
            Assert.Equal("location", e.Field);
            Assert.Contains("PostGIS extension is not installed", e.Message);
        }

        Assert.Equal("id", await db.ScalarAsync<string>("SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = 'no_gis_evolve'::regclass AND attnum > 0"));
    }
}
