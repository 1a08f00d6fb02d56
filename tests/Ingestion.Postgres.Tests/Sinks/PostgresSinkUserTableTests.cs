using Ingestion.TestSupport;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// A table the user made with its primary key and without the library's hash column: keys the key index says are new
/// are copied straight in (no staging, no upsert); known keys, and keys that turn out to exist after all, are merged
/// by comparing values on the server.
/// </summary>
public class PostgresSinkUserTableTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task New_keys_go_straight_in_by_copy_and_known_keys_are_merged()
    {
        await UserTableAsync("user_keyed", "text", "('a', 1, NULL, NULL)");
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("user-keyed", o => { o.Table = "user_keyed"; o.CreateTable = false; }));
        var first = await w.WriteBatchAsync(h.Batch<Row>([R("b", 2), R("c", 3)]), default);
        var second = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 20), R("d", 4)]), default);
        await w.CompleteAsync(default);

        Assert.Equal((2L, 0L, 0L), (first.Created, first.Updated, first.Unchanged));
        Assert.Equal((1L, 1L, 1L), (second.Created, second.Updated, second.Unchanged));
        Assert.Equal("a=1,b=20,c=3,d=4", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM user_keyed"));

        // The first batch's new keys came in by one COPY; the second batch copied its new key and merged the others.
        Assert.Equal("COPY,COPY,INSERT", await StatementsAsync("user_keyed"));
    }

    [Fact]
    public async Task A_key_written_by_someone_else_after_the_index_was_read_is_merged_and_later_keys_are_looked_up()
    {
        await UserTableAsync("user_raced", "text", null);
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("user-raced", o => { o.Table = "user_raced"; o.CreateTable = false; }));
        await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default);
        await db.ExecuteAsync("INSERT INTO user_raced VALUES ('b', 7, NULL, NULL)");
        var raced = await w.WriteBatchAsync(h.Batch<Row>([R("b", 2), R("c", 3)]), default);
        var after = await w.WriteBatchAsync(h.Batch<Row>([R("e", 5)]), default);
        await w.CompleteAsync(default);

        Assert.Equal((1L, 1L, 0L), (raced.Created, raced.Updated, raced.Unchanged));
        Assert.Equal(1L, after.Created);
        Assert.Equal("a=1,b=2,c=3,e=5", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM user_raced"));

        // The test's own insert is the first INSERT. After the COPY of the raced batch failed on the key (and was
        // undone, so not logged), the batch was merged and the run stopped trusting its index: the next new key is
        // looked up by the upsert too.
        Assert.Equal("COPY,INSERT,INSERT,INSERT", await StatementsAsync("user_raced"));
    }

    [Fact]
    public async Task A_case_insensitive_key_that_matches_a_stored_key_in_another_case_updates_it()
    {
        await db.ExecuteAsync("CREATE EXTENSION IF NOT EXISTS citext");
        await UserTableAsync("user_citext", "citext", "('ABC', 1, NULL, NULL)");
        await using var h = new SinkHarness(db);
        await using var w = await h.OpenAsync<Row>(Run<Row>("user-citext", o => { o.Table = "user_citext"; o.CreateTable = false; }));
        var r = await w.WriteBatchAsync(h.Batch<Row>([R("abc", 2), R("new", 3)]), default);
        await w.CompleteAsync(default);

        Assert.Equal((1L, 1L, 0L), (r.Created, r.Updated, r.Unchanged));
        Assert.Equal("ABC=2,new=3", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM user_citext"));
    }

    /// <summary>
    /// A user's keyed table holding <paramref name="seed"/> rows, then a statement trigger that logs whether each later
    /// insert came from COPY or INSERT.
    /// </summary>
    private async Task UserTableAsync(string table, string keyType, string? seed)
    {
        await db.ExecuteAsync($"""
            CREATE TABLE IF NOT EXISTS insert_log (id bigserial PRIMARY KEY, tbl text NOT NULL, statement text NOT NULL);
            CREATE TABLE {table} (id {keyType} PRIMARY KEY, value int NOT NULL, note text, at timestamptz);
            {(seed is null ? string.Empty : $"INSERT INTO {table} VALUES {seed};")}
            CREATE OR REPLACE FUNCTION log_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              INSERT INTO insert_log (tbl, statement) VALUES (TG_TABLE_NAME, upper(split_part(ltrim(current_query()), ' ', 1)));
              RETURN NULL;
            END $$;
            CREATE TRIGGER {table}_log AFTER INSERT ON {table} FOR EACH STATEMENT EXECUTE FUNCTION log_insert();
            """);
    }

    private Task<string> StatementsAsync(string table) =>
        db.ScalarAsync<string>($"SELECT coalesce(string_agg(statement, ',' ORDER BY id), '') FROM insert_log WHERE tbl = '{table}'");
}
