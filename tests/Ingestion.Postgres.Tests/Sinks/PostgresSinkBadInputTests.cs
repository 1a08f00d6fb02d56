using System.Runtime.CompilerServices;
using System.Text;
using Ingestion.Postgres.Sql;
using Ingestion.Running;
using Ingestion.Sinks;
using Ingestion.Stores;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using static Ingestion.Postgres.Tests.Sinks.SinkHarness;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>A record whose numbers are wider than the columns of a table the user made.</summary>
public sealed class Wide
{
    [RecordKey]
    public string Id { get; set; } = "";

    public long Count { get; set; }

    public decimal? Amount { get; set; }
}

/// <summary>A record with a local (wall-clock) time next to an instant.</summary>
public sealed class Stamped
{
    [RecordKey]
    public string Id { get; set; } = "";

    public DateTime? At { get; set; }

    [Column(WithoutTimeZone = true)]
    public DateTime? Local { get; set; }
}

/// <summary>
/// Bad input, each case on its own: a bad row becomes a rejected record (position, field, reason, raw
/// value) while the rest of its batch lands, within the source's error budget; past it the run fails,
/// its open batch rolls back and earlier batches stay. Identifiers from configuration are validated and
/// quoted; a constraint of the user's table that a row breaks gives an error naming the row's key.
/// </summary>
public class PostgresSinkBadInputTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly DateTime Utc = new(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc);

    private static Reading Rd(string? id, string? label = "ok", double value = 1, DateTime? at = null) =>
        new() { Id = id, Label = label, Value = value, TakenAt = at ?? Utc };

    private async Task<string> RejectsAsync(Guid runId) =>
        await db.ScalarAsync<string>($"SELECT coalesce(string_agg(position || '|' || coalesce(field, '-') || '|' || coalesce(raw_value, '-'), ';' ORDER BY id), '') FROM ingestion.rejected_records WHERE job_id = '{runId}'");

    [Fact]
    public async Task A_null_key_is_a_rejected_record_and_the_rest_of_the_batch_lands()
    {
        await using var h = new SinkHarness(db);
        var run = Run<Reading>("null-key", o => o.Table = "null_key");
        SinkBatchResult r;
        await using (var w = await h.OpenAsync<Reading>(run))
        {
            r = await w.WriteBatchAsync(h.Batch<Reading>([Rd("a"), Rd(null), Rd("c")], budget: 1), default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(2L, r.Created);
        var reject = Assert.Single(r.Rejected);
        Assert.Equal(new RejectedRecord("record 2", "id", "Key column 'id' is null."), reject);
        Assert.Equal("a,c", await db.ScalarAsync<string>("SELECT string_agg(id, ',' ORDER BY id) FROM null_key"));
        Assert.Equal("record 2|id|Key column 'id' is null.", await db.ScalarAsync<string>($"SELECT position || '|' || field || '|' || reason FROM ingestion.rejected_records WHERE job_id = '{run.RunId}'"));
    }

    [Fact]
    public async Task Duplicate_keys_in_a_batch_the_last_wins_and_each_earlier_one_counts_as_a_duplicate()
    {
        await using var h = new SinkHarness(db);
        await using (var w = await h.OpenAsync<Row>(Run<Row>("dups", o => o.Table = "dup_keys")))
        {
            var r = await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2), R("a", 3), R("a", 4)]), default);
            Assert.Equal((2L, 0L, 0L, 2L), (r.Created, r.Updated, r.Unchanged, r.Duplicates));

            // The last of the duplicates equals the stored row: unchanged, the earlier one a duplicate.
            r = await w.WriteBatchAsync(h.Batch<Row>([R("b", 5), R("b", 2)]), default);
            Assert.Equal((0L, 0L, 1L, 1L), (r.Created, r.Updated, r.Unchanged, r.Duplicates));
            await w.CompleteAsync(default);
        }

        Assert.Equal("a=4,b=2", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM dup_keys"));
    }

    [Fact]
    public async Task A_dynamic_value_of_the_wrong_type_is_rejected_naming_the_field_and_the_value()
    {
        var schema = RecordSchema.Create(
        [
            new ColumnSchema("id", ColumnType.Int32),
            new ColumnSchema("n", ColumnType.Int32),
            new ColumnSchema("at", ColumnType.TimestampTz),
        ], ["id"]);
        await using var h = new SinkHarness(db);
        var run = Run<DynamicRecord>("wrong-type", o => o.Table = "wrong_type");
        SinkBatchResult r;
        await using (var w = await h.OpenAsync<DynamicRecord>(run))
        {
            r = await w.WriteBatchAsync(
                h.Batch<DynamicRecord>(
                [
                    new(schema, [1, 10, Utc]),
                    new(schema, [2, "12", Utc]),
                    new(schema, [3, 2.5, Utc]),
                    new(schema, [4, 3.0, Utc]),
                    new(schema, [5, 1, "2024-01-01"]),
                    new(schema, ["six", 1, Utc]),
                ],
                budget: 10),
                default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(2L, r.Created);
        var rejects = r.Rejected.ToDictionary(x => x.Position);
        Assert.Equal(["record 2", "record 3", "record 5", "record 6"], rejects.Keys.Order().ToArray());
        Assert.Equal(("n", "12"), (rejects["record 2"].Field, rejects["record 2"].RawValue));
        Assert.Contains("got '12' of type String", rejects["record 2"].Reason);
        Assert.Equal("n", rejects["record 3"].Field);
        Assert.Contains("fractional part", rejects["record 3"].Reason);
        Assert.Equal("at", rejects["record 5"].Field);
        Assert.Contains("(timestamp with time zone), got '2024-01-01' of type String", rejects["record 5"].Reason);
        Assert.Equal("id", rejects["record 6"].Field);
        Assert.Equal("1=10,4=3", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || n, ',' ORDER BY id) FROM wrong_type"));
        Assert.Equal("record 2|n|12;record 3|n|2.5;record 5|at|2024-01-01;record 6|id|six", await RejectsAsync(run.RunId));
    }

    [Fact]
    public async Task Text_with_a_NUL_byte_is_rejected_in_a_value_or_a_key_and_its_raw_value_kept_escaped()
    {
        await using var h = new SinkHarness(db);
        var run = Run<Reading>("nul", o => o.Table = "nul_text");
        SinkBatchResult r;
        await using (var w = await h.OpenAsync<Reading>(run))
        {
            r = await w.WriteBatchAsync(h.Batch<Reading>([Rd("a"), Rd("b", label: "x\0y"), Rd("c\0")], budget: 2), default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(1L, r.Created);
        Assert.Equal(["label", "id"], r.Rejected.Select(x => x.Field ?? "-").ToArray());
        Assert.All(r.Rejected, x => Assert.Contains("NUL character", x.Reason));
        Assert.Contains("at index 1", r.Rejected[0].Reason);
        Assert.Equal("record 2|label|x\\0y;record 3|id|c\\0", await RejectsAsync(run.RunId));
        Assert.Equal("a", await db.ScalarAsync<string>("SELECT string_agg(id, ',') FROM nul_text"));
    }

    [Fact]
    public async Task Text_with_an_unpaired_surrogate_is_rejected_and_a_paired_one_lands()
    {
        await using var h = new SinkHarness(db);
        var run = Run<Reading>("surrogate", o => o.Table = "surrogate_text");
        SinkBatchResult r;
        await using (var w = await h.OpenAsync<Reading>(run))
        {
            r = await w.WriteBatchAsync(h.Batch<Reading>([Rd("a", "ok 😀"), Rd("b", "half \ud83d"), Rd("c", "\ude00 first")], budget: 2), default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(1L, r.Created);
        Assert.Equal(["record 2|label", "record 3|label"], r.Rejected.Select(x => $"{x.Position}|{x.Field}").ToArray());
        Assert.All(r.Rejected, x => Assert.Contains("unpaired UTF-16 surrogate", x.Reason));
        Assert.Equal("ok 😀", await db.ScalarAsync<string>("SELECT label FROM surrogate_text WHERE id = 'a'"));
        Assert.Equal(2L, await db.ScalarAsync<long>($"SELECT count(*) FROM ingestion.rejected_records WHERE job_id = '{run.RunId}'"));
    }

    /// <summary>jsonb cannot hold an escaped NUL or a lone surrogate escape (json, kept as text, can).</summary>
    [Fact]
    public async Task JSON_that_parses_but_jsonb_cannot_store_is_rejected_before_the_copy()
    {
        await db.ExecuteAsync("CREATE TABLE json_escapes (id int PRIMARY KEY, b jsonb, j json)");
        var schema = RecordSchema.Create([new ColumnSchema("id", ColumnType.Int32), new ColumnSchema("b", ColumnType.Json), new ColumnSchema("j", ColumnType.Json)], ["id"]);
        await using var h = new SinkHarness(db);
        SinkBatchResult r;
        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("json-escapes", o => { o.Table = "json_escapes"; o.CreateTable = false; })))
        {
            r = await w.WriteBatchAsync(
                h.Batch<DynamicRecord>(
                [
                    new(schema, [1, """{"a":"\u00e9 \ud83d\ude00"}""", """{"a":"\u0000"}"""]),
                    new(schema, [2, """{"a":"x\u0000y"}""", null]),
                    new(schema, [3, """{"k\u0000":1}""", null]),
                    new(schema, [4, """{"a":"\ud800"}""", null]),
                    new(schema, [5, null, """["\udc00"]"""]),
                    new(schema, [6, """{"a":"\\u0000 is an escaped backslash"}""", null]),
                ],
                budget: 3),
                default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(["record 2|b", "record 3|b", "record 4|b"], r.Rejected.Select(x => $"{x.Position}|{x.Field}").ToArray());
        Assert.Contains("\\u0000", r.Rejected[0].Reason);
        Assert.Contains("surrogate", r.Rejected[2].Reason);
        Assert.Equal(3L, r.Created);
        Assert.Equal("é 😀|{\"a\":\"\\u0000\"}", await db.ScalarAsync<string>("SELECT (b->>'a') || '|' || j::text FROM json_escapes WHERE id = 1"));
        Assert.Equal("\\u0000 is an escaped backslash", await db.ScalarAsync<string>("SELECT b->>'a' FROM json_escapes WHERE id = 6"));
    }

    /// <summary>
    /// real and double precision hold NaN and the infinities: they are stored as-is, and a re-sent NaN
    /// is unchanged. numeric would hold NaN (and, since PostgreSQL 14, infinities) but the writer sends
    /// numeric as a .NET decimal, which has neither: such a value is a rejected record, never a failed COPY.
    /// </summary>
    [Fact]
    public async Task NaN_and_infinities_are_stored_in_float_columns_and_rejected_for_numeric_columns()
    {
        await db.ExecuteAsync("CREATE TABLE not_finite (id int PRIMARY KEY, f8 double precision, f4 real, num numeric)");
        var schema = RecordSchema.Create(
        [
            new ColumnSchema("id", ColumnType.Int32),
            new ColumnSchema("f8", ColumnType.Float64),
            new ColumnSchema("f4", ColumnType.Float32),
            new ColumnSchema("num", ColumnType.Float64),
        ], ["id"]);
        DynamicRecord[] Rows() =>
        [
            new(schema, [1, double.NaN, float.NaN, 1.5]),
            new(schema, [2, double.PositiveInfinity, float.NegativeInfinity, 2.0]),
            new(schema, [3, 1.0, 1f, double.NaN]),
            new(schema, [4, 1.0, 1f, double.PositiveInfinity]),
            new(schema, [5, 1.0, 1f, double.NegativeInfinity]),
        ];
        await using var h = new SinkHarness(db);
        void Options(SourceOptions o)
        {
            o.Table = "not_finite";
            o.CreateTable = false;
        }

        SinkBatchResult r;
        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("not-finite", Options)))
        {
            r = await w.WriteBatchAsync(h.Batch<DynamicRecord>(Rows(), budget: 3), default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(2L, r.Created);
        Assert.Equal(["record 3", "record 4", "record 5"], r.Rejected.Select(x => x.Position).ToArray());
        Assert.All(r.Rejected, x => Assert.Equal("num", x.Field));
        Assert.All(r.Rejected, x => Assert.Contains("is not a finite number; column 'num' (numeric) cannot hold it", x.Reason));
        Assert.Equal("1|NaN|NaN|1.5;2|Infinity|-Infinity|2", await db.ScalarAsync<string>("SELECT string_agg(concat_ws('|', id, f8, f4, num), ';' ORDER BY id) FROM not_finite"));

        // NaN equals NaN for PostgreSQL's comparison: sending the same rows again changes nothing.
        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("not-finite", Options)))
        {
            r = await w.WriteBatchAsync(h.Batch<DynamicRecord>(Rows()[..2]), default);
            await w.CompleteAsync(default);
        }

        Assert.Equal((0L, 0L, 2L), (r.Created, r.Updated, r.Unchanged));
    }

    [Fact]
    public async Task NaN_in_a_table_the_sink_created_is_unchanged_when_sent_again()
    {
        await using var h = new SinkHarness(db);
        for (var pass = 0; pass < 2; pass++)
        {
            await using var w = await h.OpenAsync<Reading>(Run<Reading>("nan-hash", o => o.Table = "nan_hash"));
            var r = await w.WriteBatchAsync(h.Batch<Reading>([Rd("a", value: double.NaN), Rd("b", value: double.NegativeInfinity)]), default);
            await w.CompleteAsync(default);
            Assert.Equal(pass == 0 ? (2L, 0L) : (0L, 2L), (r.Created, r.Unchanged));
        }

        Assert.Equal("a=NaN,b=-Infinity", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM nan_hash"));
    }

    [Fact]
    public async Task A_DateTime_of_unspecified_kind_is_rejected_for_timestamptz_and_kept_as_wall_clock_time_for_timestamp()
    {
        await using var h = new SinkHarness(db);
        var unspecified = new DateTime(2024, 6, 1, 8, 30, 0, DateTimeKind.Unspecified);
        var run = Run<Stamped>("unspecified", o => o.Table = "unspecified_kind");
        SinkBatchResult r;
        await using (var w = await h.OpenAsync<Stamped>(run))
        {
            r = await w.WriteBatchAsync(
                h.Batch<Stamped>(
                [
                    new Stamped { Id = "utc", At = Utc, Local = unspecified },
                    new Stamped { Id = "bad", At = unspecified, Local = unspecified },
                ],
                budget: 1),
                default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(1L, r.Created);
        var reject = Assert.Single(r.Rejected);
        Assert.Equal(("record 2", "at", "2024-06-01T08:30:00.0000000"), (reject.Position, reject.Field, reject.RawValue));
        Assert.Contains("unspecified kind, but column 'at' is timestamptz", reject.Reason);
        Assert.Equal("timestamp without time zone", await db.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'unspecified_kind'::regclass AND attname = 'local'"));
        Assert.Equal("2024-01-02 03:04:05+00|2024-06-01 08:30:00", await db.ScalarAsync<string>("SELECT (at AT TIME ZONE 'UTC')::text || '+00|' || local::text FROM unspecified_kind WHERE id = 'utc'"));
    }

    [Fact]
    public async Task Numbers_out_of_the_range_of_the_column_are_rejected_before_the_copy()
    {
        await db.ExecuteAsync("CREATE TABLE out_of_range (id text PRIMARY KEY, count integer, amount numeric(6,2))");
        await using var h = new SinkHarness(db);
        var run = Run<Wide>("range", o => { o.Table = "out_of_range"; o.CreateTable = false; });
        SinkBatchResult r;
        await using (var w = await h.OpenAsync<Wide>(run))
        {
            r = await w.WriteBatchAsync(
                h.Batch<Wide>(
                [
                    new Wide { Id = "a", Count = int.MaxValue, Amount = 9999.99m },
                    new Wide { Id = "b", Count = int.MaxValue + 1L, Amount = 1m },
                    new Wide { Id = "c", Count = int.MinValue - 1L },
                    new Wide { Id = "d", Count = 1, Amount = 10000m },
                    new Wide { Id = "e", Count = 1, Amount = 9999.995m },
                    new Wide { Id = "f", Count = int.MinValue, Amount = -9999.994m },
                ],
                budget: 4),
                default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(2L, r.Created);
        Assert.Equal(
            ["record 2|count|2147483648", "record 3|count|-2147483649", "record 4|amount|10000", "record 5|amount|9999.995"],
            r.Rejected.Select(x => $"{x.Position}|{x.Field}|{x.RawValue}").ToArray());
        Assert.Contains("2147483648 is out of range for column 'count' (integer)", r.Rejected[0].Reason);
        Assert.Contains("9999.995 is out of range for column 'amount' (numeric(6,2))", r.Rejected[3].Reason);
        Assert.Equal("a|2147483647|9999.99;f|-2147483648|-9999.99", await db.ScalarAsync<string>("SELECT string_agg(concat_ws('|', id, count, amount), ';' ORDER BY id) FROM out_of_range"));
    }

    [Fact]
    public async Task A_string_longer_than_a_varchar_column_is_rejected_counting_characters_not_bytes()
    {
        await db.ExecuteAsync("CREATE TABLE short_text (id text PRIMARY KEY, label varchar(5), value float8 NOT NULL, taken_at timestamptz)");
        await using var h = new SinkHarness(db);
        var run = Run<Reading>("varchar", o => { o.Table = "short_text"; o.CreateTable = false; });
        SinkBatchResult r;
        await using (var w = await h.OpenAsync<Reading>(run))
        {
            r = await w.WriteBatchAsync(
                h.Batch<Reading>(
                [
                    Rd("ascii", "abcde"),
                    Rd("long", "toolong"),
                    Rd("accents", "ééééé"),
                    Rd("emoji", "😀😀😀😀😀"),
                    Rd("emoji6", "😀😀😀😀😀😀"),
                ],
                budget: 2),
                default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(3L, r.Created);
        Assert.Equal(["record 2|label|toolong", "record 5|label|😀😀😀😀😀😀"], r.Rejected.Select(x => $"{x.Position}|{x.Field}|{x.RawValue}").ToArray());
        Assert.Contains("Text of 7 characters is longer than column 'label' (character varying(5)) allows", r.Rejected[0].Reason);
        Assert.Contains("Text of 6 characters", r.Rejected[1].Reason);
        Assert.Equal("accents=ééééé,ascii=abcde,emoji=😀😀😀😀😀", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || label, ',' ORDER BY id) FROM short_text"));
    }

    [Theory]
    [InlineData("a\";DROP TABLE t;--")]
    [InlineData("with 'quotes' and \"double\"")]
    [InlineData("Table; DELETE FROM t")]
    public async Task Hostile_table_schema_and_column_names_are_quoted_never_executed(string name)
    {
        await db.ExecuteAsync("CREATE TABLE IF NOT EXISTS t (x int); INSERT INTO t SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM t)");
        await db.ExecuteAsync($"CREATE SCHEMA {PgIdentifier.Quote(name)}");
        var schema = RecordSchema.Create([new ColumnSchema("id", ColumnType.Text), new ColumnSchema(name, ColumnType.Int32)], ["id"]);
        await using var h = new SinkHarness(db);
        var r = default(SinkBatchResult);
        await using (var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("hostile", o => { o.Table = name; o.Schema = name; })))
        {
            r = await w.WriteBatchAsync(h.Batch<DynamicRecord>([new(schema, ["a", 1]), new(schema, ["b", 2])]), default);
            await w.CompleteAsync(default);
        }

        Assert.Equal(2L, r!.Created);
        var table = PgIdentifier.Qualify(name, name);
        Assert.Equal(3L, await db.ScalarAsync<long>($"SELECT sum({PgIdentifier.Quote(name)}) FROM {table}"));
        Assert.Equal(name, await db.ScalarAsync<string>($"SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {Literal(name)} AND c.relkind = 'r'"));
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM public.t"));
        await db.ExecuteAsync($"DROP SCHEMA {PgIdentifier.Quote(name)} CASCADE");
    }

    [Fact]
    public async Task Identifiers_over_63_bytes_are_refused_naming_the_setting_and_63_bytes_of_UTF8_are_kept_whole()
    {
        var overlong = new string('é', 32);
        Assert.Equal(64, Encoding.UTF8.GetByteCount(overlong));
        await using var h = new SinkHarness(db);

        async Task<IngestionException> FailsAsync(Action<SourceOptions> configure, RecordSchema? schema = null)
        {
            schema ??= RecordSchema.Create([new ColumnSchema("id", ColumnType.Text)], ["id"]);
            await using var w = await h.OpenAsync<DynamicRecord>(Run<DynamicRecord>("overlong", configure));
            return await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<DynamicRecord>([new(schema, schema.Columns.Select(_ => (object?)"a").ToArray())]), default));
        }

        var e = await FailsAsync(o => o.Table = overlong);
        Assert.Contains("Ingestion:Sources:overlong:Table", e.Message);
        Assert.Contains("longer than 63 bytes", e.Message);
        e = await FailsAsync(o => o.Schema = overlong);
        Assert.Contains("Ingestion:Sources:overlong:Schema", e.Message);
        e = await FailsAsync(o => o.Table = "tab\0le");
        Assert.Contains("Ingestion:Sources:overlong:Table", e.Message);
        Assert.Contains("control character", e.Message);
        e = await FailsAsync(o => o.Table = "ok_table", RecordSchema.Create([new ColumnSchema("id", ColumnType.Text), new ColumnSchema(overlong, ColumnType.Text)], ["id"]));
        Assert.Equal(overlong, e.Field);
        Assert.Contains("Column name of source 'overlong'", e.Message);
        e = await FailsAsync(o => { o.Table = "ok_table"; o.KeyColumns.Add("x\"; DROP TABLE t; --"); });
        Assert.Contains("Ingestion:Sources:overlong:KeyColumns", e.Message);
        Assert.Equal(0L, await db.ScalarAsync<long>("SELECT count(*) FROM pg_class WHERE relname = 'ok_table'"));

        // 31 two-byte characters and one ASCII: exactly 63 bytes, created under that very name (not truncated).
        var longest = new string('é', 31) + "x";
        await using (var w = await h.OpenAsync<Row>(Run<Row>("longest", o => o.Table = longest)))
        {
            Assert.Equal(1L, (await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default)).Created);
            await w.CompleteAsync(default);
        }

        Assert.Equal(longest, await db.ScalarAsync<string>($"SELECT relname::text FROM pg_class WHERE relname = {Literal(longest)}"));
    }

    [Fact]
    public async Task Within_the_error_budget_a_run_lands_the_good_rows_and_records_each_bad_one()
    {
        await using var sp = PostgresRunnerTests.Services(db, b => b.AddSource("budgeted", _ => new FuncSource<Reading>((c, ct) => Readings(c, 1, 25, bad: [3, 12, 20], ct: ct)), o =>
        {
            o.Table = "budgeted";
            o.CreateTable = true;
            o.BatchSize = 10;
            o.MaxRejected = 3;
        }));
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("budgeted", null, default);

        Assert.Equal(IngestionStatus.PartiallySucceeded, result.Status);
        Assert.Equal((25L, 22L, 3L), (result.Counts.Read, result.Counts.Created, result.Counts.Rejected));
        Assert.True(result.Counts.AddsUp);
        Assert.Equal(22L, await db.ScalarAsync<long>("SELECT count(*) FROM budgeted"));
        Assert.Equal("record 3|id|-;record 12|label|x\\0;record 20|taken_at|2024-01-01T00:00:00.0000000", await RejectsAsync(result.RunId));
        Assert.Equal("25", (await sp.GetRequiredService<ISourceStateStore>().GetAsync("budgeted", default)).Cursor);
    }

    [Fact]
    public async Task Past_the_default_budget_of_zero_the_run_fails_its_open_batch_rolls_back_and_earlier_batches_stay()
    {
        await using var sp = PostgresRunnerTests.Services(db, b => b.AddSource("unbudgeted", _ => new FuncSource<Reading>((c, ct) => Readings(c, 1, 30, bad: [15], ct: ct)), o =>
        {
            o.Table = "unbudgeted";
            o.CreateTable = true;
            o.BatchSize = 10;
        }));
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("unbudgeted", null, default);

        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Equal(1, result.Attempts);
        Assert.Equal(("record 15", "id"), (result.Error!.Position, result.Error.Field));
        Assert.Contains("MaxRejected", result.Error.Message);
        Assert.Equal((10L, 10L), (result.Counts.Read, result.Counts.Created));
        Assert.Equal("r0001-r0010", await db.ScalarAsync<string>("SELECT min(id) || '-' || max(id) FROM unbudgeted"));
        Assert.Equal("10", (await sp.GetRequiredService<ISourceStateStore>().GetAsync("unbudgeted", default)).Cursor);
        Assert.Equal("record 15|id|-", await RejectsAsync(result.RunId));
        Assert.Equal("Failed", await db.ScalarAsync<string>($"SELECT status FROM ingestion.import_jobs WHERE id = '{result.RunId}'"));
    }

    [Fact]
    public async Task A_check_constraint_broken_by_a_new_row_names_its_key_without_the_servers_error_detail()
    {
        await db.ExecuteAsync("CREATE TABLE checked_new (id text PRIMARY KEY, value int CONSTRAINT value_small CHECK (value < 100), note text, at timestamptz, _ingestion_hash bigint)");
        await using var h = new SinkHarness(db, connectionString: WithoutErrorDetail());
        await using var w = await h.OpenAsync<Row>(Run<Row>("checked-new", o => { o.Table = "checked_new"; o.CreateTable = false; }));
        await w.WriteBatchAsync(h.Batch<Row>([R("a", 1)]), default);
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Row>([R("b", 2), R("bad-key", 500), R("c", 3)]), default));

        Assert.Equal("record 3", e.Position);
        Assert.Contains("record 3 (key id='bad-key') violates constraint value_small of table public.checked_new", e.Message);
        Assert.Equal("23514", Assert.IsType<PostgresException>(e.InnerException).SqlState);
        Assert.Equal("a", await db.ScalarAsync<string>("SELECT string_agg(id, ',') FROM checked_new"));
    }

    [Fact]
    public async Task A_check_constraint_broken_by_an_update_in_the_merge_names_the_key_of_the_row()
    {
        await db.ExecuteAsync("CREATE TABLE checked_upd (id text PRIMARY KEY, value int CONSTRAINT value_small CHECK (value < 100), note text, at timestamptz, _ingestion_hash bigint)");
        await using var h = new SinkHarness(db, connectionString: WithoutErrorDetail());
        var rows = Enumerable.Range(1, 20).Select(i => R($"k{i:D2}", i)).ToList();
        await using var w = await h.OpenAsync<Row>(Run<Row>("checked-upd", o => { o.Table = "checked_upd"; o.CreateTable = false; }));
        Assert.Equal(20L, (await w.WriteBatchAsync(h.Batch<Row>(rows), default)).Created);

        // Every row changes; the 14th breaks the check. The batch is one UPDATE, which does not say which row failed.
        var changed = rows.Select(r => R(r.Id, r.Id == "k14" ? 1400 : r.Value + 1)).Append(R("k21", 21)).ToList();
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Row>(changed), default));

        Assert.Equal("record 34", e.Position);
        Assert.Contains("(key id='k14') violates constraint value_small of table public.checked_upd", e.Message);
        Assert.Equal(210L, await db.ScalarAsync<long>("SELECT sum(value) FROM checked_upd"));
        Assert.Equal(20L, await db.ScalarAsync<long>("SELECT count(*) FROM checked_upd"));
    }

    [Fact]
    public async Task A_unique_index_on_a_non_key_column_broken_in_a_plain_table_names_the_key()
    {
        await db.ExecuteAsync("CREATE TABLE unique_note (id text PRIMARY KEY, value int, note text CONSTRAINT note_unique UNIQUE, at timestamptz)");
        await db.ExecuteAsync("INSERT INTO unique_note VALUES ('a', 1, 'taken', NULL)");
        await using var h = new SinkHarness(db, connectionString: WithoutErrorDetail());
        await using var w = await h.OpenAsync<Row>(Run<Row>("unique-note", o => { o.Table = "unique_note"; o.CreateTable = false; }));
        var e = await Assert.ThrowsAsync<IngestionException>(async () =>
            await w.WriteBatchAsync(h.Batch<Row>([R("b", 2, "free"), R("c", 3, "other"), R("d", 4, "taken"), R("e", 5)]), default));

        Assert.Equal("record 3", e.Position);
        Assert.Contains("(key id='d') violates constraint note_unique of table public.unique_note", e.Message);
        Assert.Equal("a", await db.ScalarAsync<string>("SELECT string_agg(id, ',') FROM unique_note"));
    }

    [Fact]
    public async Task Two_rows_of_one_batch_breaking_a_unique_index_together_name_the_second_one()
    {
        await db.ExecuteAsync("CREATE TABLE unique_pair (id text PRIMARY KEY, value int, note text CONSTRAINT pair_note_unique UNIQUE, at timestamptz, _ingestion_hash bigint)");
        await using var h = new SinkHarness(db, connectionString: WithoutErrorDetail());
        await using var w = await h.OpenAsync<Row>(Run<Row>("unique-pair", o => { o.Table = "unique_pair"; o.CreateTable = false; }));
        await w.WriteBatchAsync(h.Batch<Row>([R("a", 1, "a"), R("b", 2, "b")]), default);

        // Each row passes alone; together (with the others kept) the last one breaks the index.
        var e = await Assert.ThrowsAsync<IngestionException>(async () =>
            await w.WriteBatchAsync(h.Batch<Row>([R("a", 10, "same"), R("c", 3, "c"), R("b", 20, "same"), R("d", 4, "d")]), default));

        Assert.Equal("record 5", e.Position);
        Assert.Contains("(key id='b') violates constraint pair_note_unique", e.Message);
        Assert.Equal("a=1a,b=2b", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value || note, ',' ORDER BY id) FROM unique_pair"));
    }

    [Fact]
    public async Task Appending_a_key_that_exists_names_the_key()
    {
        await using var h = new SinkHarness(db, connectionString: WithoutErrorDetail());
        await using var w = await h.OpenAsync<Row>(Run<Row>("append-dup", o => { o.Table = "append_dup"; o.WriteMode = WriteMode.Append; }));
        await w.WriteBatchAsync(h.Batch<Row>([R("a", 1), R("b", 2)]), default);
        var e = await Assert.ThrowsAsync<IngestionException>(async () => await w.WriteBatchAsync(h.Batch<Row>([R("c", 3), R("b", 4)]), default));

        Assert.Equal("record 4", e.Position);
        Assert.Contains("record 4 (key id='b') violates constraint append_dup_pkey", e.Message);
        Assert.Contains("WriteMode Merge", e.Message);
        Assert.Equal("a=1,b=2", await db.ScalarAsync<string>("SELECT string_agg(id || '=' || value, ',' ORDER BY id) FROM append_dup"));
    }

    private string WithoutErrorDetail() => new NpgsqlConnectionStringBuilder(db.ConnectionString) { IncludeErrorDetail = false }.ConnectionString;

    private static string Literal(string s) => "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'";

    /// <summary>Readings r{from}..r{to}, checkpointing every 10 and at the end; the numbers in <paramref name="bad"/> are bad in turn: a null key, a NUL byte, an unspecified time.</summary>
    private static async IAsyncEnumerable<Reading> Readings(IngestionContext context, int from, int to, int[] bad, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await Task.Yield();
        var nth = 0;
        for (var i = from; i <= to; i++)
        {
            ct.ThrowIfCancellationRequested();
            var reading = Rd($"r{i:D4}", value: i);
            if (bad.Contains(i))
            {
                switch (nth++ % 3)
                {
                    case 0:
                        reading.Id = null;
                        break;
                    case 1:
                        reading.Label = "x\0";
                        break;
                    default:
                        reading.TakenAt = new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Unspecified);
                        break;
                }
            }

            if (i % 10 == 0 || i == to)
            {
                // Before the record it covers: the runner saves it with the batch holding that record.
                context.Checkpoint(new SourceCheckpoint(i.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            }

            yield return reading;
        }
    }
}
