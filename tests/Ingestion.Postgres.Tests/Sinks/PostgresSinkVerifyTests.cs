using Ingestion.Running;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// A plain full refresh trusts the stored row hash; a verifying one (<see cref="RunRequest.Verify"/>) compares the stored
/// values on the server and repairs rows edited or deleted by hand.
/// </summary>
public class PostgresSinkVerifyTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private ServiceProvider Services(string source, string table, bool createTable = true) =>
        PostgresRunnerTests.Services(db, b => b.AddSource(source, _ => new RowSource((c, ct) => RowSource.Rows(c, 1, 10, every: 5, ct: ct)), o =>
        {
            o.Table = table;
            o.CreateTable = createTable;
            o.BatchSize = 4;
        }));

    private static RunRequest Full(bool verify) => new() { Mode = IngestionMode.FullRefresh, Verify = verify };

    [Fact]
    public async Task A_verifying_full_refresh_repairs_rows_edited_or_deleted_by_hand_that_a_plain_one_misses()
    {
        await using var sp = Services("verify-hashed", "verify_hashed");
        var runner = sp.GetRequiredService<IIngestionRunner>();
        Assert.Equal(10L, (await runner.RunAsync("verify-hashed", null, default)).Counts.Created);
        await db.ExecuteAsync("UPDATE verify_hashed SET value = 999 WHERE id = 'k0003'; UPDATE verify_hashed SET note = 'hand' WHERE id = 'k0007'; DELETE FROM verify_hashed WHERE id = 'k0005'");

        // The stored hashes still match the source: a plain full refresh puts the deleted row back (its key is gone)
        // but trusts the hashes of the edited rows, so the edits stay.
        var plain = await runner.RunAsync("verify-hashed", Full(verify: false), default);
        Assert.Equal((IngestionStatus.Succeeded, 9L, 0L, 1L), (plain.Status, plain.Counts.Unchanged, plain.Counts.Updated, plain.Counts.Created));
        Assert.Equal(999, await db.ScalarAsync<int>("SELECT value FROM verify_hashed WHERE id = 'k0003'"));

        // The verifying refresh compares the values themselves: both edited rows are rewritten.
        var verified = await runner.RunAsync("verify-hashed", Full(verify: true), default);
        Assert.Equal((IngestionStatus.Succeeded, 8L, 2L, 0L), (verified.Status, verified.Counts.Unchanged, verified.Counts.Updated, verified.Counts.Created));
        Assert.True(verified.Counts.AddsUp);
        Assert.Equal("10|55|0", await db.ScalarAsync<string>("SELECT count(*) || '|' || sum(value) || '|' || count(note) FROM verify_hashed"));

        // Repaired rows carry their true hash again: both kinds of refresh now find everything unchanged.
        Assert.Equal(10L, (await runner.RunAsync("verify-hashed", Full(verify: true), default)).Counts.Unchanged);
        Assert.Equal(10L, (await runner.RunAsync("verify-hashed", Full(verify: false), default)).Counts.Unchanged);
    }

    [Fact]
    public async Task A_verifying_refresh_works_on_a_table_the_library_did_not_create()
    {
        await db.ExecuteAsync("CREATE TABLE verify_plain (id text PRIMARY KEY, value int NOT NULL, note text, at timestamptz)");
        await using var sp = Services("verify-plain", "verify_plain", createTable: false);
        var runner = sp.GetRequiredService<IIngestionRunner>();
        var first = await runner.RunAsync("verify-plain", null, default);
        Assert.True(first.Counts.Created == 10, $"{first.Status} {first.Counts} {first.Error}");
        await db.ExecuteAsync("UPDATE verify_plain SET value = -1 WHERE id = 'k0010'");

        var verified = await runner.RunAsync("verify-plain", Full(verify: true), default);
        Assert.Equal((9L, 1L, 0L), (verified.Counts.Unchanged, verified.Counts.Updated, verified.Counts.Created));
        Assert.Equal(10, await db.ScalarAsync<int>("SELECT value FROM verify_plain WHERE id = 'k0010'"));
    }
}
