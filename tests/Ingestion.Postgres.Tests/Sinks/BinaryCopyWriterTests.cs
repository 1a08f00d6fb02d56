using Ingestion.Postgres.Sinks;
using Ingestion.TestSupport;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// The sink's own binary COPY encoder against Npgsql as the oracle: each value goes into one row through
/// <see cref="BinaryCopyWriter"/> and into another through an Npgsql parameter of the same type, and the server
/// must store the two identically (compared with <c>IS NOT DISTINCT FROM</c> on the typed columns and on their
/// text form, so a numeric's display scale counts).
/// </summary>
public sealed class BinaryCopyWriterTests(PostgresDatabase database) : IClassFixture<PostgresDatabase>
{
    public static TheoryData<string> Decimals => new()
    {
        "0", "0.0", "0.00000", "1", "-1", "1.5", "1.50", "-1.50", "0.0001", "0.00001", "-0.00012345", "10000", "10000.0000",
        "12345678.9", "99999999", "100000000", "123456789012345678901234567.8", "0.0000000000000000000000000001",
        "-0.0000000000000000000000000001", "79228162514264337593543950335", "-79228162514264337593543950335",
        "7.9228162514264337593543950335", "1000000000000000000000000000", "0.1000", "3.14159265358979323846264338",
    };

    [Theory]
    [MemberData(nameof(Decimals))]
    public async Task Numeric_matches_npgsql(string text)
    {
        var value = decimal.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
        await CompareAsync("numeric", NpgsqlDbType.Numeric, value, (w, v) => w.WriteNumeric(v));
    }

    public static TheoryData<DateTime> Timestamps => new()
    {
        new DateTime(2026, 11, 22, 10, 30, 15, DateTimeKind.Utc).AddTicks(1234567),
        new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc),
        new DateTime(1999, 12, 31, 23, 59, 59, DateTimeKind.Utc).AddTicks(9999999),
        new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(-7),
        new DateTime(1, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(10),
        new DateTime(9999, 12, 31, 23, 59, 59, DateTimeKind.Utc),
        DateTime.SpecifyKind(DateTime.MaxValue, DateTimeKind.Utc),
        DateTime.SpecifyKind(DateTime.MinValue, DateTimeKind.Utc),
    };

    [Theory]
    [MemberData(nameof(Timestamps))]
    public async Task Timestamps_match_npgsql(DateTime value)
    {
        await CompareAsync("timestamptz", NpgsqlDbType.TimestampTz, value, (w, v) => w.WriteTimestamp(v));
        await CompareAsync("timestamp", NpgsqlDbType.Timestamp, DateTime.SpecifyKind(value, DateTimeKind.Unspecified), (w, v) => w.WriteTimestamp(v));
    }

    [Fact]
    public async Task Dates_match_npgsql()
    {
        foreach (var d in new[] { new DateOnly(2026, 11, 22), new DateOnly(2000, 1, 1), new DateOnly(1999, 12, 31), new DateOnly(1, 1, 1).AddDays(1), DateOnly.MaxValue, DateOnly.MinValue })
        {
            await CompareAsync("date", NpgsqlDbType.Date, d, (w, v) => w.WriteDate(v));
        }
    }

    [Fact]
    public async Task Integers_floats_booleans_and_uuids_match_npgsql()
    {
        foreach (var v in new short[] { 0, 1, -1, short.MaxValue, short.MinValue })
        {
            await CompareAsync("smallint", NpgsqlDbType.Smallint, v, (w, x) => w.WriteInt16(x));
        }

        foreach (var v in new[] { 0, -1, int.MaxValue, int.MinValue, 123456789 })
        {
            await CompareAsync("integer", NpgsqlDbType.Integer, v, (w, x) => w.WriteInt32(x));
        }

        foreach (var v in new[] { 0L, -1L, long.MaxValue, long.MinValue, 1234567890123L })
        {
            await CompareAsync("bigint", NpgsqlDbType.Bigint, v, (w, x) => w.WriteInt64(x));
        }

        foreach (var v in new[] { 0.0, -0.0, 1.5, -123.456e-200, double.MaxValue, double.Epsilon, double.NaN, double.PositiveInfinity, double.NegativeInfinity })
        {
            await CompareAsync("double precision", NpgsqlDbType.Double, v, (w, x) => w.WriteFloat64(x));
        }

        foreach (var v in new[] { 0f, 1.25f, -3.4e38f, float.NaN, float.NegativeInfinity })
        {
            await CompareAsync("real", NpgsqlDbType.Real, v, (w, x) => w.WriteFloat32(x));
        }

        foreach (var v in new[] { true, false })
        {
            await CompareAsync("boolean", NpgsqlDbType.Boolean, v, (w, x) => w.WriteBoolean(x));
        }

        foreach (var v in new[] { Guid.Empty, Guid.Parse("0f8fad5b-d9cb-469f-a165-70867728950e"), Guid.Parse("ffffffff-0000-ffff-0000-ffffffffffff") })
        {
            await CompareAsync("uuid", NpgsqlDbType.Uuid, v, (w, x) => w.WriteUuid(x));
        }
    }

    [Fact]
    public async Task Text_json_jsonb_and_bytea_match_npgsql_including_values_larger_than_the_buffer()
    {
        var big = string.Concat(Enumerable.Repeat("Montréal 🚲 œuvre ", 20_000));
        foreach (var v in new[] { string.Empty, "a", "Théâtre du Nouveau-Monde", "emoji 🚲 and CJK 漢字", big })
        {
            await CompareAsync("text", NpgsqlDbType.Text, v, (w, x) => w.WriteText(x));
        }

        foreach (var v in new[] { "{}", """{"name":"Vélo","n":[1,2.50,null],"nested":{"b":true}}""", $$"""{"big":"{{big}}"}""" })
        {
            await CompareAsync("jsonb", NpgsqlDbType.Jsonb, v, (w, x) => w.WriteText(x, jsonb: true));
            await CompareAsync("json", NpgsqlDbType.Json, v, (w, x) => w.WriteText(x));
        }

        var bytes = Enumerable.Range(0, 200_000).Select(i => (byte)(i * 7)).ToArray();
        foreach (var v in new[] { Array.Empty<byte>(), new byte[] { 0, 255, 1 }, bytes })
        {
            await CompareAsync("bytea", NpgsqlDbType.Bytea, v, (w, x) => w.WriteBytes(x));
        }
    }

    [Fact]
    public async Task Many_rows_with_nulls_span_several_flushes()
    {
        await database.ExecuteAsync("CREATE TABLE many (id integer PRIMARY KEY, label text, amount numeric)");
        await using var conn = await database.DataSource.OpenConnectionAsync();
        const int rows = 50_000;
        var copied = await BinaryCopyWriter.CopyAsync(conn, "COPY many (id, label, amount) FROM STDIN (FORMAT BINARY)", 0, rows, static (w, _, n) =>
        {
            w.StartRow(3);
            w.WriteInt32(n);
            if (n % 3 == 0)
            {
                w.WriteNull();
            }
            else
            {
                w.WriteText($"row {n} é");
            }

            w.WriteNumeric(n / 100m);
        }, CancellationToken.None);

        Assert.Equal(rows, copied);
        Assert.Equal(rows, await database.ScalarAsync<long>("SELECT count(*) FROM many"));
        Assert.Equal(rows / 3 + 1, await database.ScalarAsync<long>("SELECT count(*) FROM many WHERE label IS NULL"));
        Assert.Equal("row 49999 é|499.99", await database.ScalarAsync<string>("SELECT label || '|' || amount FROM many WHERE id = 49999"));
    }

    [Fact]
    public async Task A_failure_while_writing_rows_cancels_the_copy_and_nothing_lands()
    {
        await database.ExecuteAsync("CREATE TABLE aborted (id integer)");
        await using var conn = await database.DataSource.OpenConnectionAsync();
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => BinaryCopyWriter.CopyAsync(conn, "COPY aborted (id) FROM STDIN (FORMAT BINARY)", 0, 30_000, static (w, _, n) =>
        {
            if (n == 25_000)
            {
                throw new InvalidOperationException("the source broke at row 25000");
            }

            w.StartRow(1);
            w.WriteInt32(n);
        }, CancellationToken.None));
        Assert.Contains("row 25000", e.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM aborted"));

        // The connection is still usable after the cancelled COPY.
        await using var cmd = new NpgsqlCommand("SELECT 42", conn);
        Assert.Equal(42, await cmd.ExecuteScalarAsync());
    }

    [Fact]
    public async Task A_server_error_surfaces_with_its_line_and_nothing_lands()
    {
        await database.ExecuteAsync("CREATE TABLE keyed (id integer PRIMARY KEY)");
        await using var conn = await database.DataSource.OpenConnectionAsync();
        var e = await Assert.ThrowsAsync<PostgresException>(() => BinaryCopyWriter.CopyAsync(conn, "COPY keyed (id) FROM STDIN (FORMAT BINARY)", 0, 10, static (w, _, n) =>
        {
            w.StartRow(1);
            w.WriteInt32(n == 7 ? 3 : n);
        }, CancellationToken.None));
        Assert.Equal(PostgresErrorCodes.UniqueViolation, e.SqlState);
        Assert.Contains("line 8", e.Where, StringComparison.Ordinal);
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM keyed"));
    }

    [Fact]
    public async Task Cancellation_mid_copy_rolls_it_back()
    {
        await database.ExecuteAsync("CREATE TABLE cancelled (id integer)");
        await using var conn = await database.DataSource.OpenConnectionAsync();
        using var cts = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => BinaryCopyWriter.CopyAsync(conn, "COPY cancelled (id) FROM STDIN (FORMAT BINARY)", cts, 100_000, static (w, c, n) =>
        {
            if (n == 60_000)
            {
                c.Cancel();
            }

            c.Token.ThrowIfCancellationRequested();
            w.StartRow(1);
            w.WriteInt32(n);
        }, cts.Token));
        Assert.Equal(0L, await database.ScalarAsync<long>("SELECT count(*) FROM cancelled"));
    }

    private async Task CompareAsync<T>(string sqlType, NpgsqlDbType dbType, T value, Action<BinaryCopyWriter, T> write)
    {
        var table = "cmp_" + Guid.NewGuid().ToString("N")[..12];
        await database.ExecuteAsync($"CREATE TABLE {table} (id integer PRIMARY KEY, v {sqlType})");
        await using var conn = await database.DataSource.OpenConnectionAsync();
        await BinaryCopyWriter.CopyAsync(conn, $"COPY {table} (id, v) FROM STDIN (FORMAT BINARY)", value, 1, (w, v, _) =>
        {
            w.StartRow(2);
            w.WriteInt32(1);
            write(w, v);
        }, CancellationToken.None);

        await using (var insert = new NpgsqlCommand($"INSERT INTO {table} (id, v) VALUES (2, $1)", conn))
        {
            insert.Parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = dbType });
            await insert.ExecuteNonQueryAsync();
        }

        // Typed equality where the type has it (json does not), and the text form (a numeric's scale, -0).
        var typed = sqlType == "json" ? "a.v::text = b.v::text" : "a.v IS NOT DISTINCT FROM b.v";
        await using var check = new NpgsqlCommand($"SELECT ({typed}) AND (a.v::text IS NOT DISTINCT FROM b.v::text), a.v::text, b.v::text FROM {table} a, {table} b WHERE a.id = 1 AND b.id = 2", conn);
        await using var reader = await check.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        var ours = reader.IsDBNull(1) ? "NULL" : reader.GetString(1);
        var theirs = reader.IsDBNull(2) ? "NULL" : reader.GetString(2);
        Assert.True(reader.GetBoolean(0), $"{sqlType}: ours stored {Shorten(ours)}, Npgsql stored {Shorten(theirs)} for {value}");
    }

    private static string Shorten(string s) => s.Length > 80 ? s[..80] + "..." : s;
}
