using Ingestion.Postgres.Migrations;
using Ingestion.Postgres.Sql;
using Ingestion.TestSupport;

namespace Ingestion.Postgres.Tests.Migrations;

public class PostgresMigratorTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly IPostgresMigration[] Migrations =
    [
        new PostgresMigration("demo", 1, "table", "CREATE TABLE {schema}.demo (id int PRIMARY KEY)"),
        new PostgresMigration("demo", 2, "column", "ALTER TABLE {schema}.demo ADD COLUMN name text"),
        new PostgresMigration("other", 1, "table", "CREATE TABLE {schema}.other (id int)"),
    ];

    [Fact]
    public async Task Applies_in_order_once_even_when_two_hosts_start_at_once()
    {
        var a = new PostgresMigrator(db.DataSource, "mig_race");
        var b = new PostgresMigrator(db.DataSource, "mig_race");
        var results = await Task.WhenAll(
            a.MigrateAsync(Migrations.Reverse(), CancellationToken.None),
            b.MigrateAsync(Migrations, CancellationToken.None));
        Assert.Equal(3, results.Sum(r => r.Count));
        Assert.Equal(3L, await db.ScalarAsync<long>("SELECT count(*) FROM mig_race.schema_migrations"));
        Assert.Empty(await a.MigrateAsync(Migrations, CancellationToken.None));
        await db.ExecuteAsync("INSERT INTO mig_race.demo (id, name) VALUES (1, 'x')");
    }

    [Fact]
    public async Task A_failing_migration_names_itself_and_applies_nothing()
    {
        var bad = Migrations.Append(new PostgresMigration("demo", 3, "broken", "ALTER TABLE {schema}.nope ADD COLUMN x int"));
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => new PostgresMigrator(db.DataSource, "mig_fail").MigrateAsync(bad, CancellationToken.None));
        Assert.Contains("demo v3 (broken)", e.Message);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname = 'mig_fail'"));
    }

    [Fact]
    public async Task Duplicate_versions_are_refused()
    {
        var dup = Migrations.Append(new PostgresMigration("demo", 1, "again", "SELECT 1"));
        await Assert.ThrowsAsync<ArgumentException>(() => new PostgresMigrator(db.DataSource, "mig_dup").MigrateAsync(dup, CancellationToken.None));
    }

    [Theory]
    [InlineData("a\";DROP TABLE t;--")]
    [InlineData("with \"quotes\"")]
    public async Task Hostile_schema_names_are_quoted_not_executed(string schema)
    {
        await new PostgresMigrator(db.DataSource, schema).MigrateAsync(Migrations, CancellationToken.None);
        Assert.Equal(1L, await db.ScalarAsync<long>($"SELECT count(*) FROM pg_namespace WHERE nspname = '{schema.Replace("'", "''", StringComparison.Ordinal)}'"));
        Assert.Equal(3L, await db.ScalarAsync<long>($"SELECT count(*) FROM {PgIdentifier.Quote(schema)}.schema_migrations"));
    }

    [Fact]
    public void Overlong_and_empty_identifiers_are_refused()
    {
        Assert.Contains("63 bytes", Assert.Throws<ArgumentException>(() => PgIdentifier.Quote(new string('é', 32), "Ingestion:Sources:x:Table")).Message);
        Assert.NotNull(PgIdentifier.Problem("", "x"));
        Assert.NotNull(PgIdentifier.Problem("a\0b", "x"));
        Assert.Equal("\"a\"\"b\"", PgIdentifier.Quote("a\"b"));
    }
}
