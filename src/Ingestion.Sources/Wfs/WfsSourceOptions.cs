using Ingestion.Sources.Http;
using Ingestion.Sources.Mapping;

namespace Ingestion.Sources.Wfs;

/// <summary>Settings of a WFS / GeoJSON source, bound from <c>Ingestion:Sources:&lt;name&gt;</c>.</summary>
public sealed class WfsSourceOptions : IHttpSourceOptions
{
    /// <summary>
    /// The WFS endpoint (<c>https://host/geoserver/wfs</c>) with <see cref="TypeName"/>; or, without a type name, the URL
    /// or local path of a GeoJSON FeatureCollection read in one piece. Required.
    /// </summary>
    public string? Url { get; set; }

    /// <summary>The feature type (<c>ns:radars</c>); when set, <c>GetFeature</c> requests are paged with <c>startIndex</c>/<c>count</c>.</summary>
    public string? TypeName { get; set; }

    /// <summary>The WFS version. Default <c>2.0.0</c>.</summary>
    public string Version { get; set; } = "2.0.0";

    /// <summary>The output format asked for. Default <c>application/json</c>.</summary>
    public string OutputFormat { get; set; } = "application/json";

    /// <summary>The coordinate system asked for (the geometry column is SRID 4326). Default <c>EPSG:4326</c>.</summary>
    public string SrsName { get; set; } = "EPSG:4326";

    /// <summary>Features per request (<c>count</c>). Default 1,000.</summary>
    public int PageSize { get; set; } = 1000;

    /// <summary>The most pages one run reads. Default 100,000.</summary>
    public int MaxPages { get; set; } = 100_000;

    /// <summary>
    /// The columns, each from a property (<see cref="ColumnMappingOptions.From"/> is a dotted path inside <c>properties</c>;
    /// <c>@id</c> is the feature id). Empty: the feature id as <c>feature_id</c> plus every property of the first page as text.
    /// </summary>
    public IList<ColumnMappingOptions> Columns { get; } = new List<ColumnMappingOptions>();

    /// <summary>The key columns. Default <c>feature_id</c>.</summary>
    public IList<string> Key { get; } = new List<string>();

    /// <summary>The PostGIS column receiving the geometry; empty for none. Default <c>geom</c>.</summary>
    public string? GeometryColumn { get; set; } = "geom";

    /// <summary>The HTTP settings.</summary>
    public SourceHttpOptions Http { get; set; } = new();

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <param name="prefix">The configuration path of the options.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<string> Validate(string prefix)
    {
        if (string.IsNullOrWhiteSpace(Url))
        {
            yield return $"{prefix}:Url is required.";
        }
        else if (TypeName is { Length: > 0 } && !(Uri.TryCreate(Url, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttp || u.Scheme == Uri.UriSchemeHttps)))
        {
            yield return $"{prefix}:Url must be an http(s) URL when TypeName is set (was '{Url}').";
        }

        if (PageSize <= 0)
        {
            yield return $"{prefix}:PageSize must be positive (was {PageSize}).";
        }

        if (MaxPages <= 0)
        {
            yield return $"{prefix}:MaxPages must be positive (was {MaxPages}).";
        }

        if (GeometryColumn is { Length: > 0 } g && !ColumnValues.IsValidColumnName(g))
        {
            yield return $"{prefix}:GeometryColumn '{g}' is not a valid column name.";
        }

        foreach (var e in ColumnValues.Validate(prefix, Columns, Key))
        {
            yield return e;
        }

        foreach (var e in (Http ?? new SourceHttpOptions()).Validate($"{prefix}:Http"))
        {
            yield return e;
        }
    }
}
