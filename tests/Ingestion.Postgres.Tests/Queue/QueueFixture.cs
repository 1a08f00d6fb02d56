using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Queue;
using Ingestion.Queue;
using Ingestion.TestSupport;
using Microsoft.Extensions.Options;

namespace Ingestion.Postgres.Tests.Queue;

/// <summary>A store over its own schema of the fixture database, and helpers shared by the queue tests.</summary>
internal sealed class QueueTestStore : IAsyncDisposable
{
    private QueueTestStore(PostgresDatabase db, string schema, IngestionDatabase database, PostgresWorkQueue store)
    {
        Db = db;
        Schema = schema;
        Database = database;
        Store = store;
    }

    public PostgresDatabase Db { get; }

    public string Schema { get; }

    public IngestionDatabase Database { get; }

    public PostgresWorkQueue Store { get; }

    public static async Task<QueueTestStore> CreateAsync(PostgresDatabase db, string? schema = null)
    {
        schema ??= "q_" + Guid.NewGuid().ToString("N")[..10];
        var database = new IngestionDatabase(Options.Create(new PostgresIngestionOptions { ConnectionString = db.ConnectionString, Schema = schema }), QueueMigrations.All);
        await database.EnsureMigratedAsync(CancellationToken.None);
        return new QueueTestStore(db, schema, database, new PostgresWorkQueue(database));
    }

    public Task<long> CountAsync(string where) => Db.ScalarAsync<long>($"SELECT count(*) FROM \"{Schema}\".{where}");

    public static async IAsyncEnumerable<WorkItemRequest> Items(IEnumerable<string> keys)
    {
        foreach (var k in keys)
        {
            yield return new WorkItemRequest(k);
        }

        await Task.CompletedTask;
    }

    public static async IAsyncEnumerable<WorkItemRequest> Requests(IEnumerable<WorkItemRequest> items)
    {
        foreach (var item in items)
        {
            yield return item;
        }

        await Task.CompletedTask;
    }

    public static async IAsyncEnumerable<string> Keys(IEnumerable<string> keys)
    {
        foreach (var k in keys)
        {
            yield return k;
        }

        await Task.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        await Database.DisposeAsync();
    }
}
