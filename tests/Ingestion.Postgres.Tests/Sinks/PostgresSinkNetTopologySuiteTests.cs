using Ingestion.Sinks;
using Ingestion.TestSupport;
using NetTopologySuite.Geometries;
using NetTopologySuite.IO;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>A place whose geometries are NetTopologySuite values, as a .NET PostGIS user already has them.</summary>
public sealed class NtsPlace
{
    [RecordKey]
    public string Id { get; set; } = "";

    public Point? Location { get; set; }

    public Geometry? Shape { get; set; }
}

/// <summary>NetTopologySuite geometries written to PostGIS through binary COPY (EWKB from NetTopologySuite's WKBWriter).</summary>
public class PostgresSinkNetTopologySuiteTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>, IAsyncLifetime
{
    private static readonly GeometryFactory Wgs84 = new(new PrecisionModel(), 4326);
    private static readonly GeometryFactory NoSrid = new();

    public Task InitializeAsync() => db.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS postgis");

    public Task DisposeAsync() => Task.CompletedTask;

    private static Polygon Square(GeometryFactory f) => f.CreatePolygon([new(-73.6, 45.5), new(-73.5, 45.5), new(-73.5, 45.6), new(-73.6, 45.6), new(-73.6, 45.5)]);

    [Fact]
    public async Task Geometry_properties_land_as_SRID_4326_geometries_and_read_back_equal()
    {
        var hole = Wgs84.CreatePolygon(
            Wgs84.CreateLinearRing([new(0, 0), new(10, 0), new(10, 10), new(0, 10), new(0, 0)]),
            [Wgs84.CreateLinearRing([new(2, 2), new(2, 4), new(4, 4), new(4, 2), new(2, 2)])]);
        var places = new List<NtsPlace>
        {
            new() { Id = "mtl", Location = Wgs84.CreatePoint(new Coordinate(-73.5673, 45.5017)), Shape = Square(Wgs84) },
            new() { Id = "hole", Shape = hole },
            new() { Id = "unset-srid", Location = NoSrid.CreatePoint(new Coordinate(2.35, 48.85)), Shape = NoSrid.CreateMultiLineString([NoSrid.CreateLineString([new(0, 0), new(1, 1)]), NoSrid.CreateLineString([new(2, 2), new(3, 3)])]) },
            new() { Id = "collection", Shape = Wgs84.CreateGeometryCollection([Wgs84.CreatePoint(new Coordinate(1, 2)), Wgs84.CreateLineString([new(0, 0), new(1.5, 2)])]) },
            new() { Id = "z", Location = Wgs84.CreatePoint(new CoordinateZ(-71.2, 46.8, 120)) },
        };
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<NtsPlace>(Run<NtsPlace>("nts-places", o => o.Table = "nts_places")))
        {
            Assert.Equal(5L, (await w.WriteBatchAsync(h.Batch<NtsPlace>(places), default)).Created);
            await w.CompleteAsync(default);
        }

        Assert.Equal("geometry(Geometry,4326)", await db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'nts_places'::regclass AND attname = 'shape'"));
        Assert.Equal("POINT(-73.5673 45.5017)|4326", await db.ScalarAsync<string>("SELECT ST_AsText(location) || '|' || ST_SRID(location) FROM nts_places WHERE id = 'mtl'"));
        Assert.True(await db.ScalarAsync<bool>("SELECT ST_Contains(shape, location) FROM nts_places WHERE id = 'mtl'"));
        Assert.Equal("POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,2 4,4 4,4 2,2 2))", await db.ScalarAsync<string>("SELECT ST_AsText(shape) FROM nts_places WHERE id = 'hole'"));
        Assert.Equal(96.0, await db.ScalarAsync<double>("SELECT ST_Area(shape) FROM nts_places WHERE id = 'hole'"));

        // An unset SRID (NetTopologySuite's default, 0) is WGS 84, as GeoJSON is; the caller's object is not changed.
        Assert.Equal("POINT(2.35 48.85)|4326|MULTILINESTRING((0 0,1 1),(2 2,3 3))|4326", await db.ScalarAsync<string>("SELECT ST_AsText(location) || '|' || ST_SRID(location) || '|' || ST_AsText(shape) || '|' || ST_SRID(shape) FROM nts_places WHERE id = 'unset-srid'"));
        Assert.Equal(0, places[2].Location!.SRID);
        Assert.Equal("GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1.5 2))", await db.ScalarAsync<string>("SELECT ST_AsText(shape) FROM nts_places WHERE id = 'collection'"));

        // Z is dropped, as for GeoJSON: the column is 2D.
        Assert.Equal("POINT(-71.2 46.8)", await db.ScalarAsync<string>("SELECT ST_AsText(location) FROM nts_places WHERE id = 'z'"));

        // Read back as NetTopologySuite reads PostGIS (EWKB, what Npgsql.NetTopologySuite's reader parses): equal geometries, SRID 4326.
        var back = new WKBReader().Read(await db.ScalarAsync<byte[]>("SELECT ST_AsEWKB(shape) FROM nts_places WHERE id = 'hole'"));
        Assert.True(back.EqualsExact(hole));
        Assert.Equal(4326, back.SRID);

        // The same geometries again are unchanged; a moved point is an update.
        places[0].Location = Wgs84.CreatePoint(new Coordinate(-73.5673, 45.5017));
        places[1].Location = Wgs84.CreatePoint(new Coordinate(3, 3));
        await using (var w = await h.OpenAsync<NtsPlace>(Run<NtsPlace>("nts-places", o => o.Table = "nts_places")))
        {
            var r = await w.WriteBatchAsync(h.Batch<NtsPlace>(places), default);
            Assert.Equal((0L, 1L, 4L), (r.Created, r.Updated, r.Unchanged));
            await w.CompleteAsync(default);
        }

        // PostGIS sees the hole: a point in it is not contained by the polygon.
        Assert.False(await db.ScalarAsync<bool>("SELECT ST_Contains(shape, location) FROM nts_places WHERE id = 'hole'"));
    }

    [Fact]
    public async Task Geometries_of_another_SRID_or_outside_WGS_84_are_rejected_records_naming_the_column()
    {
        var quebecLambert = new GeometryFactory(new PrecisionModel(), 32198);
        await using var h = new SinkHarness(db);
        SinkBatchResult r;
        await using (var w = await h.OpenAsync<NtsPlace>(Run<NtsPlace>("nts-bad", o => o.Table = "nts_bad")))
        {
            r = await w.WriteBatchAsync(
                h.Batch<NtsPlace>(
                [
                    new() { Id = "ok", Shape = Square(Wgs84) },
                    new() { Id = "lambert", Location = quebecLambert.CreatePoint(new Coordinate(-250000, 350000)) },
                    new() { Id = "lat", Shape = NoSrid.CreateLineString([new(0, 0), new(10, 95)]) },
                    new() { Id = "nan", Location = Wgs84.CreatePoint(new Coordinate(double.NaN, 45)) },
                ],
                budget: 3),
                default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(1L, r.Created);
        Assert.Equal(["record 2|location", "record 3|shape", "record 4|location"], r.Rejected.Select(x => $"{x.Position}|{x.Field}").ToArray());
        Assert.Equal("Geometry (Point) has SRID 32198, but column 'location' holds SRID 4326 (WGS 84 longitude/latitude): transform it to EPSG:4326 first.", r.Rejected[0].Reason);
        Assert.Equal("POINT (-250000 350000)", r.Rejected[0].RawValue);
        Assert.Equal("Geometry (LineString) has position [10, 95], outside WGS 84 longitude/latitude ranges.", r.Rejected[1].Reason);
        Assert.Contains("position [NaN, 45]", r.Rejected[2].Reason);
        Assert.Equal("ok", await db.ScalarAsync<string>("SELECT string_agg(id, ',') FROM nts_bad"));
    }

    [Fact]
    public async Task Dynamic_records_take_NetTopologySuite_geometries_beside_points_and_GeoJSON()
    {
        await db.ExecuteAsync("CREATE TABLE nts_radars (id int PRIMARY KEY, geom geometry(Geometry, 4326))");
        var schema = RecordSchema.Create([new ColumnSchema("id", ColumnType.Int32), new ColumnSchema("geom", ColumnType.Geometry)], ["id"]);
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("nts-radars", o => { o.Table = "nts_radars"; o.CreateTable = false; })))
        {
            var r = await w.WriteBatchAsync(
                h.Batch<DynamicRecord>(
                [
                    new(schema, [1, Wgs84.CreatePoint(new Coordinate(-71.2, 46.8))]),
                    new(schema, [2, new GeoPoint(-73.75, 45.45)]),
                    new(schema, [3, """{"type":"Point","coordinates":[-72,46]}"""]),
                ]),
                default);
            Assert.Equal(3L, r.Created);
            await w.CompleteAsync(default);
        }

        Assert.Equal("1=POINT(-71.2 46.8),2=POINT(-73.75 45.45),3=POINT(-72 46)", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || ST_AsText(geom), ',' ORDER BY id) FROM nts_radars"));
    }
}
