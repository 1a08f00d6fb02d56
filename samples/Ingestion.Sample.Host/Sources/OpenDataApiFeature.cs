using Ingestion.Sources.Ckan;
using Ingestion.Sources.JsonApi;
using Ingestion.Sources.Mapping;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sample.Host.Sources;

/// <summary>
/// The CKAN and JSON API sources of the sample host, read over HTTP from <see cref="LocalOpenDataApi"/> (bundled
/// files served on 127.0.0.1, started on first use):
/// <list type="bullet">
/// <item><c>bike-paths</c>: a CKAN datastore resource (<c>reseau-cyclable-2026</c>, 130 records) paged 50 at a
/// time; columns and types come from the resource's <c>fields</c>, the key is <c>_id</c>.</item>
/// <item><c>events-api</c>: a paginated JSON API (47 events, 20 a page, the next page's link in the body) with
/// nested paths (<c>venue.name</c>) and a JSON column (<c>tags</c>).</item>
/// </list>
/// Point <c>Ingestion:Sources:bike-paths:BaseUrl</c> (and <c>ResourceId</c>) at a real CKAN portal, or
/// <c>Ingestion:Sources:events-api:Url</c> at a real API, to read those instead.
/// </summary>
public sealed class OpenDataApiFeature : ISampleFeature
{
    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory)
    {
        var api = new LocalOpenDataApi(dataDirectory);
        ingestion.Services.AddSingleton(api);
        ingestion.Services.AddHostedService(sp => sp.GetRequiredService<LocalOpenDataApi>());

        ingestion.AddCkanSource(
            "bike-paths",
            o =>
            {
                // Configuration wins: the local server and its paging apply only when no BaseUrl is configured.
                if (o.BaseUrl is null)
                {
                    o.BaseUrl = api.BaseAddress.AbsoluteUri;
                    o.ResourceId ??= "reseau-cyclable-2026";
                    o.PageSize = 50;
                }
            },
            s =>
            {
                s.Table ??= "bike_paths";
                s.CreateTable = true;
            });

        ingestion.AddJsonApiSource(
            "events-api",
            o =>
            {
                // Configuration wins: the local server and the shape of its pages apply only when no Url is configured
                // (a real API sets its own Pagination, ItemsPath... under Ingestion:Sources:events-api).
                if (o.Url is null)
                {
                    o.Url = new Uri(api.BaseAddress, "api/events").AbsoluteUri;
                    o.Pagination = JsonApiPagination.NextLink;
                    o.NextLinkPath = "links.next";
                    o.ItemsPath = "data";
                    o.TotalPath = "meta.total";
                    o.PageSize = 20;
                }

                if (o.Columns.Count == 0)
                {
                    o.Columns.Add(new ColumnMappingOptions { Name = "id" });
                    o.Columns.Add(new ColumnMappingOptions { Name = "title" });
                    o.Columns.Add(new ColumnMappingOptions { Name = "starts_at", Type = ColumnType.TimestampTz });
                    o.Columns.Add(new ColumnMappingOptions { Name = "venue", From = "venue.name" });
                    o.Columns.Add(new ColumnMappingOptions { Name = "borough", From = "venue.borough" });
                    o.Columns.Add(new ColumnMappingOptions { Name = "price", Type = ColumnType.Decimal });
                    o.Columns.Add(new ColumnMappingOptions { Name = "free", Type = ColumnType.Boolean });
                    o.Columns.Add(new ColumnMappingOptions { Name = "tags", Type = ColumnType.Json });
                    o.Key.Add("id");
                }
            },
            s =>
            {
                s.Table ??= "events_api";
                s.CreateTable = true;
            });
    }
}
