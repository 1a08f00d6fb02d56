using Ingestion.Sources.Csv;
using Ingestion.Sources.Mapping;
using Ingestion.Sources.Wfs;
using Microsoft.Extensions.Configuration;

namespace Ingestion.Sample.Host.Sources;

/// <summary>
/// Built-in sources on bundled files: a CSV of parking tickets (typed columns, one bad line rejected with its
/// line number) and a GeoJSON file read by the WFS/GeoJSON source. Both end as not modified on a second run.
/// </summary>
public sealed class BuiltInSourcesFeature : ISampleFeature
{
    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory)
    {
        ingestion.AddCsvSource(
            "parking-tickets",
            o =>
            {
                o.Location ??= Path.Combine(dataDirectory, "parking-tickets.csv");
                if (o.Columns.Count == 0)
                {
                    o.Columns.Add(new ColumnMappingOptions { Name = "ticket_no", From = "No" });
                    o.Columns.Add(new ColumnMappingOptions { Name = "issued_on", From = "Date", Type = ColumnType.Date, Format = "yyyy-MM-dd" });
                    o.Columns.Add(new ColumnMappingOptions { Name = "amount", From = "Montant", Type = ColumnType.Int32 });
                    o.Columns.Add(new ColumnMappingOptions { Name = "street", From = "Rue" });
                    o.Columns.Add(new ColumnMappingOptions { Name = "borough", From = "Arrondissement" });
                    o.Key.Add("ticket_no");
                }
            },
            s =>
            {
                s.Table ??= "parking_tickets";
                s.CreateTable = true;
                s.MaxRejected = 5;
            });

        // A GeoJSON file through the WFS/GeoJSON source. The geometry column is left out here so the sample runs
        // on a database without PostGIS; set Ingestion:Sources:school-zones:GeometryColumn=geom to keep it.
        ingestion.AddWfsSource(
            "school-zones",
            o =>
            {
                o.Url ??= Path.Combine(dataDirectory, "school-zones.geojson");
                o.GeometryColumn = configuration["Ingestion:Sources:school-zones:GeometryColumn"];
            },
            s =>
            {
                s.Table ??= "school_zones";
                s.CreateTable = true;
            });
    }
}
