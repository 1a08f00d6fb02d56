namespace Ingestion;

/// <summary>A WGS 84 point, stored in a PostGIS <c>geometry(Point, 4326)</c> column.</summary>
/// <param name="Longitude">Longitude in degrees, -180 to 180.</param>
/// <param name="Latitude">Latitude in degrees, -90 to 90.</param>
public readonly record struct GeoPoint(double Longitude, double Latitude)
{
    /// <summary>Whether both coordinates are finite and within their ranges.</summary>
    public bool IsValid =>
        double.IsFinite(Longitude) && double.IsFinite(Latitude)
        && Longitude is >= -180 and <= 180 && Latitude is >= -90 and <= 90;

    /// <summary>The point as a GeoJSON geometry object.</summary>
    /// <returns>A string such as <c>{"type":"Point","coordinates":[-73.56,45.5]}</c>.</returns>
    public string ToGeoJson() =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{{\"type\":\"Point\",\"coordinates\":[{Longitude:R},{Latitude:R}]}}");
}

/// <summary>A geometry given as a GeoJSON geometry object (Point, LineString, Polygon, Multi*), in WGS 84.</summary>
/// <param name="Json">The GeoJSON geometry object text.</param>
public sealed record GeoJsonGeometry(string Json);
