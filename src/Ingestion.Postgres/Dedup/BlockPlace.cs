using Ingestion.Dedup;

namespace Ingestion.Postgres.Dedup;

/// <summary>
/// The place and time stored with a placed block entry and sent with a placed probe, so the candidate query keeps only
/// the entries within the matcher's maximum distance and tolerance: the point as a unit vector (the straight-line chord
/// between two unit vectors grows with the great-circle distance, with no special case at the poles or across the
/// antimeridian) and the time in seconds since 1970. Empty when the matcher has no such field or the record no value.
/// </summary>
/// <param name="X">The unit vector's x (towards 0° N, 0° E).</param>
/// <param name="Y">The unit vector's y (towards 0° N, 90° E).</param>
/// <param name="Z">The unit vector's z (towards the North Pole).</param>
/// <param name="T">Seconds since 1970-01-01 UTC.</param>
internal readonly record struct BlockPlace(float? X, float? Y, float? Z, double? T)
{
    private const double EarthRadiusMeters = 6_371_008.8;

    /// <summary>Slack on the chord for the rounding of <see langword="float"/> vectors (about 6 m): the check may keep a pair slightly too far, never drop one within the distance.</summary>
    private const double ChordSlack = 1e-6;

    /// <summary>The place and time of a record (of the matcher's blocking geo and date fields).</summary>
    /// <param name="matcher">The matcher.</param>
    /// <param name="profile">The record.</param>
    /// <returns>The place and time; each part empty when the record has no value.</returns>
    public static BlockPlace Of(RecordMatcher matcher, MatchProfile profile)
    {
        float? x = null, y = null, z = null;
        double? t = null;
        if (matcher.Blocking.GeoField is { } g && profile.Values[g.Ordinal] is GeoPoint p)
        {
            var lat = p.Latitude * Math.PI / 180;
            var lon = p.Longitude * Math.PI / 180;
            x = (float)(Math.Cos(lat) * Math.Cos(lon));
            y = (float)(Math.Cos(lat) * Math.Sin(lon));
            z = (float)Math.Sin(lat);
        }

        if (matcher.Blocking.TimeField is { } f && profile.Values[f.Ordinal] is DateTimeOffset d)
        {
            t = (d.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / (double)TimeSpan.TicksPerSecond;
        }

        return new BlockPlace(x, y, z, t);
    }

    /// <summary>The largest squared chord between the unit vectors of two points within the geo field's maximum distance (with slack).</summary>
    /// <param name="matcher">The matcher.</param>
    /// <returns>The squared chord (4, the whole sphere, without a geo field).</returns>
    public static double MaxChordSquared(RecordMatcher matcher)
    {
        if (matcher.Blocking.GeoField is not { } g)
        {
            return 4;
        }

        var chord = (2 * Math.Sin(Math.Min(Math.PI, g.MaxDistanceMeters / EarthRadiusMeters) / 2)) + ChordSlack;
        return chord * chord;
    }

    /// <summary>The largest time difference kept, in seconds: the date field's tolerance plus one second of slack.</summary>
    /// <param name="matcher">The matcher.</param>
    /// <returns>The seconds (unbounded without a date field).</returns>
    public static double MaxSeconds(RecordMatcher matcher) =>
        matcher.Blocking.TimeField is { } f ? f.Tolerance.TotalSeconds + 1 : double.MaxValue;
}
