using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using NetTopologySuite.Geometries;
using NetTopologySuite.IO;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// Builds PostGIS EWKB (SRID 4326) on the client, so geometry values go through binary COPY like any
/// other value and a bad geometry becomes a rejected record instead of failing the COPY. NetTopologySuite
/// geometries are written by its own <see cref="WKBWriter"/> (2D, little-endian, with the SRID).
/// </summary>
internal static class Ewkb
{
    private const uint SridFlag = 0x20000000;
    private const int Srid = 4326;

    /// <summary>Why a NetTopologySuite geometry cannot go into a WGS 84 column, or <see langword="null"/> when it can.</summary>
    /// <remarks>
    /// As with Npgsql.NetTopologySuite, X is the longitude and Y the latitude and the geometry's <see cref="Geometry.SRID"/> is
    /// its SRID; an unset SRID (0, NetTopologySuite's default) is taken as 4326, like GeoJSON. Other SRIDs are refused
    /// rather than stored as coordinates they are not.
    /// </remarks>
    public static string? Check(Geometry geometry, PgColumn column)
    {
        if (geometry.SRID is not (0 or Srid))
        {
            return $"Geometry ({geometry.GeometryType}) has SRID {geometry.SRID}, but column '{column.Name}' holds SRID {Srid} (WGS 84 longitude/latitude): transform it to EPSG:{Srid} first.";
        }

        foreach (var c in geometry.Coordinates)
        {
            if (!new GeoPoint(c.X, c.Y).IsValid)
            {
                return string.Create(CultureInfo.InvariantCulture, $"Geometry ({geometry.GeometryType}) has position [{c.X}, {c.Y}], outside WGS 84 longitude/latitude ranges.");
            }
        }

        return null;
    }

    /// <summary>The EWKB of a NetTopologySuite geometry, SRID 4326 when its SRID is unset; Z and M are dropped, as for GeoJSON.</summary>
    public static byte[] FromNts(Geometry geometry)
    {
        if (geometry.SRID == 0)
        {
            geometry = geometry.Copy();
            geometry.SRID = Srid;
        }

        return new WKBWriter(ByteOrder.LittleEndian, handleSRID: true, emitZ: false, emitM: false).Write(geometry);
    }

    public static byte[] Point(GeoPoint p)
    {
        var bytes = new byte[25];
        bytes[0] = 1;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(1), 1 | SridFlag);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(5), Srid);
        BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(9), p.Longitude);
        BinaryPrimitives.WriteDoubleLittleEndian(bytes.AsSpan(17), p.Latitude);
        return bytes;
    }

    /// <summary>Converts a GeoJSON geometry object to EWKB.</summary>
    public static bool TryFromGeoJson(string json, out byte[]? ewkb, out string? problem)
    {
        ewkb = null;
        try
        {
            using var doc = JsonDocument.Parse(json);
            var buffer = new List<byte>(64);
            problem = WriteGeometry(doc.RootElement, buffer, withSrid: true, depth: 0);
            if (problem is null)
            {
                ewkb = buffer.ToArray();
                return true;
            }
        }
        catch (JsonException e)
        {
            problem = $"Geometry is not valid GeoJSON: {e.Message}";
            return false;
        }

        problem = $"Geometry is not a valid GeoJSON geometry: {problem}";
        return false;
    }

    private static string? WriteGeometry(JsonElement g, List<byte> output, bool withSrid, int depth)
    {
        if (depth > 8 || g.ValueKind != JsonValueKind.Object || !g.TryGetProperty("type", out var typeProp) || typeProp.ValueKind != JsonValueKind.String)
        {
            return "expected an object with a \"type\".";
        }

        var type = typeProp.GetString();
        uint code = type switch
        {
            "Point" => 1,
            "LineString" => 2,
            "Polygon" => 3,
            "MultiPoint" => 4,
            "MultiLineString" => 5,
            "MultiPolygon" => 6,
            "GeometryCollection" => 7,
            _ => 0,
        };
        if (code == 0)
        {
            return $"unknown geometry type '{type}'.";
        }

        output.Add(1);
        AddUInt32(output, withSrid ? code | SridFlag : code);
        if (withSrid)
        {
            AddUInt32(output, Srid);
        }

        if (code == 7)
        {
            if (!g.TryGetProperty("geometries", out var geometries) || geometries.ValueKind != JsonValueKind.Array)
            {
                return "a GeometryCollection needs \"geometries\".";
            }

            AddUInt32(output, (uint)geometries.GetArrayLength());
            foreach (var child in geometries.EnumerateArray())
            {
                if (WriteGeometry(child, output, withSrid: false, depth + 1) is { } p)
                {
                    return p;
                }
            }

            return null;
        }

        if (!g.TryGetProperty("coordinates", out var c) || c.ValueKind != JsonValueKind.Array)
        {
            return $"a {type} needs \"coordinates\".";
        }

        return code switch
        {
            1 => WritePosition(c, output),
            2 => WritePositions(c, output, 2),
            3 => WriteRings(c, output),
            _ => WriteMulti(c, output, code - 3),
        };
    }

    private static string? WriteMulti(JsonElement c, List<byte> output, uint partCode)
    {
        AddUInt32(output, (uint)c.GetArrayLength());
        foreach (var part in c.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Array)
            {
                return "a part of a multi-geometry is not an array.";
            }

            output.Add(1);
            AddUInt32(output, partCode);
            var p = partCode switch
            {
                1 => WritePosition(part, output),
                2 => WritePositions(part, output, 2),
                _ => WriteRings(part, output),
            };
            if (p is not null)
            {
                return p;
            }
        }

        return null;
    }

    private static string? WriteRings(JsonElement rings, List<byte> output)
    {
        AddUInt32(output, (uint)rings.GetArrayLength());
        foreach (var ring in rings.EnumerateArray())
        {
            if (ring.ValueKind != JsonValueKind.Array)
            {
                return "a polygon ring is not an array.";
            }

            if (WritePositions(ring, output, 4) is { } p)
            {
                return p;
            }
        }

        return null;
    }

    private static string? WritePositions(JsonElement positions, List<byte> output, int minimum)
    {
        var count = positions.GetArrayLength();
        if (count < minimum)
        {
            return $"{count} positions where at least {minimum} are needed.";
        }

        AddUInt32(output, (uint)count);
        foreach (var position in positions.EnumerateArray())
        {
            if (WritePosition(position, output) is { } p)
            {
                return p;
            }
        }

        return null;
    }

    private static string? WritePosition(JsonElement position, List<byte> output)
    {
        if (position.ValueKind != JsonValueKind.Array || position.GetArrayLength() < 2
            || position[0].ValueKind != JsonValueKind.Number || position[1].ValueKind != JsonValueKind.Number)
        {
            return "a position must be an array of at least two numbers.";
        }

        var lon = position[0].GetDouble();
        var lat = position[1].GetDouble();
        if (!new GeoPoint(lon, lat).IsValid)
        {
            return $"position [{lon}, {lat}] is outside WGS 84 longitude/latitude ranges.";
        }

        Span<byte> b = stackalloc byte[16];
        BinaryPrimitives.WriteDoubleLittleEndian(b, lon);
        BinaryPrimitives.WriteDoubleLittleEndian(b[8..], lat);
        foreach (var x in b)
        {
            output.Add(x);
        }

        return null;
    }

    private static void AddUInt32(List<byte> output, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        foreach (var x in b)
        {
            output.Add(x);
        }
    }
}
