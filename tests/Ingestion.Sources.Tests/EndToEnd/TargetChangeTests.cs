using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Ingestion.Sources.Csv;
using Ingestion.Sources.Mapping;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sources.Tests.EndToEnd;

/// <summary>A source's saved state belongs to the source and its target: pointing an unchanged file at a new table fills it.</summary>
public sealed class TargetChangeTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>, IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"ingestion-target-{Guid.NewGuid():N}.csv");

    public void Dispose() => File.Delete(_path);

    private async Task<IngestionResult> RunAsync(string table, string? schema = null)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddIngestion().UsePostgres(o => o.ConnectionString = db.ConnectionString).AddCsvSource("tickets", o =>
        {
            o.Location = _path;
            o.Columns.Add(new ColumnMappingOptions { Name = "id", From = "Id" });
            o.Columns.Add(new ColumnMappingOptions { Name = "amount", From = "Amount", Type = ColumnType.Int32 });
            o.Key.Add("id");
        }, s =>
        {
            s.Table = table;
            s.Schema = schema;
            s.CreateTable = true;
        });
        await using var sp = services.BuildServiceProvider();
        return await sp.GetRequiredService<IIngestionRunner>().RunAsync("tickets", null, default);
    }

    [Fact]
    public async Task A_new_table_for_an_unchanged_file_is_filled_not_answered_not_modified()
    {
        await File.WriteAllTextAsync(_path, "Id,Amount\nT1,10\nT2,20\nT3,30\n");
        Assert.Equal(IngestionStatus.Succeeded, (await RunAsync("tickets_v1")).Status);
        Assert.Equal(IngestionStatus.NotModified, (await RunAsync("tickets_v1")).Status);

        var moved = await RunAsync("tickets_v2");
        Assert.Equal(IngestionStatus.Succeeded, moved.Status);
        Assert.Equal(3L, moved.Counts.Created);
        Assert.Equal(60L, await db.ScalarAsync<long>("SELECT sum(amount) FROM tickets_v2"));

        // The state now belongs to the new table: the unchanged file is not read again for it...
        Assert.Equal(IngestionStatus.NotModified, (await RunAsync("tickets_v2")).Status);

        // ...and a change of schema is a change of target too.
        await db.ExecuteAsync("CREATE SCHEMA archive");
        var otherSchema = await RunAsync("tickets_v2", "archive");
        Assert.Equal(IngestionStatus.Succeeded, otherSchema.Status);
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM archive.tickets_v2"));
        Assert.Equal("archive.tickets_v2", await db.ScalarAsync<string>("SELECT \"values\"->>'ingestion.target' FROM ingestion.source_state WHERE source = 'tickets'"));
    }
}
