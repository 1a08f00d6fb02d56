using Ingestion.Postgres.Sinks;
using Ingestion.TestSupport;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>
/// The key index read from raw binary COPY bytes must hash every stored key exactly as the writer hashes the record's
/// value (else an unchanged row would look new): checked for each key type it reads, against the .NET values inserted.
/// </summary>
public class KeyHashReaderTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private const ulong Seed = 0x243f6a8885a308d3UL;

    private static readonly string[] Texts = ["", "a", "plain ascii key", "é accent", "日本語", "emoji 😀 pair", "tab\tand \"quote\"", new string('x', 40)];

    [Fact]
    public async Task Every_key_type_read_from_raw_copy_hashes_as_the_record_value_does()
    {
        var rows = Rows(500);

        // Dates at the ends of DateOnly are stored as infinity and -infinity, and must hash as the record's value does.
        rows.Add(new KeyRow(-2, "date max", 30001, 3, 4, true, Guid.NewGuid(), DateOnly.MaxValue, 1));
        rows.Add(new KeyRow(-3, "date min", 30002, 5, 7, false, Guid.NewGuid(), DateOnly.MinValue, 2));
        await FillAsync("khr_types", rows);
        var columns = new (string Name, PgKind Kind, Func<KeyRow, ulong> Expected)[]
        {
            ("t", PgKind.Text, r => Expected((ref RowHasher h) => ValueCodec.Hash(ref h, r.Text))),
            ("i2", PgKind.Int16, r => Expected((ref RowHasher h) => ValueCodec.Hash(ref h, r.Short))),
            ("i4", PgKind.Int32, r => Expected((ref RowHasher h) => ValueCodec.Hash(ref h, r.Int))),
            ("i8", PgKind.Int64, r => Expected((ref RowHasher h) => ValueCodec.Hash(ref h, r.Long))),
            ("u", PgKind.Uuid, r => Expected((ref RowHasher h) => ValueCodec.Hash(ref h, r.Uuid))),
            ("d", PgKind.Date, r => Expected((ref RowHasher h) => ValueCodec.Hash(ref h, r.Date))),
        };

        foreach (var (name, kind, expected) in columns)
        {
            var index = await LoadAsync("khr_types", [Column(name, kind)], hasHash: true);
            Assert.Equal(rows.Count, index.Count);
            foreach (var r in rows)
            {
                Assert.True(index.TryGetValue(expected(r), out var rowHash), $"key {name} of row {r.Id} not found");
                Assert.Equal(r.RowHash ?? KeyHashIndex.UnknownRowHash, rowHash);
            }
        }

        // Two rows differ only in the boolean: a key on it has two values.
        var flags = await LoadAsync("khr_types", [Column("b", PgKind.Boolean)], hasHash: false);
        Assert.True(flags.TryGetValue(Expected((ref RowHasher h) => ValueCodec.Hash(ref h, true)), out _));
        Assert.True(flags.TryGetValue(Expected((ref RowHasher h) => ValueCodec.Hash(ref h, false)), out _));
    }

    [Fact]
    public async Task A_composite_key_and_rows_across_many_buffers_are_read_whole()
    {
        var rows = Rows(30_000);
        rows.Add(new KeyRow(-1, new string('ü', 200_000), 1, 2, 3, true, Guid.NewGuid(), new DateOnly(1999, 12, 31), 42));
        await FillAsync("khr_composite", rows);
        var index = await LoadAsync("khr_composite", [Column("t", PgKind.Text), Column("i4", PgKind.Int32), Column("u", PgKind.Uuid)], hasHash: true);

        Assert.Equal(rows.Count, index.Count);
        foreach (var r in rows)
        {
            var key = Expected((ref RowHasher h) =>
            {
                ValueCodec.Hash(ref h, r.Text);
                ValueCodec.Hash(ref h, r.Int);
                ValueCodec.Hash(ref h, r.Uuid);
            });
            Assert.True(index.TryGetValue(key, out var rowHash), $"row {r.Id} not found");
            Assert.Equal(r.RowHash ?? KeyHashIndex.UnknownRowHash, rowHash);
        }
    }

    [Fact]
    public async Task A_full_index_makes_the_load_incomplete_and_the_connection_stays_usable()
    {
        await FillAsync("khr_full", Rows(5_000));
        await using var conn = new NpgsqlConnection(db.ConnectionString);
        await conn.OpenAsync();
        var index = new KeyHashIndex(10);
        var complete = await KeyHashReader.LoadAsync(conn, "COPY (SELECT i4, h FROM khr_full) TO STDOUT (FORMAT BINARY)", [Column("i4", PgKind.Int32)], true, Seed, index, default);

        Assert.False(complete);
        Assert.Equal(10, index.Count);
        await using var cmd = new NpgsqlCommand("SELECT count(*) FROM khr_full", conn);
        Assert.Equal(5_000L, await cmd.ExecuteScalarAsync());
    }

    [Theory]
    [InlineData(200_000, 10)] // full early, while the server still sends: a cancel would fail the COPY
    [InlineData(5_000, 4_997)] // full on one of the last keys, set after the export's end
    public async Task An_index_that_fills_up_inside_a_transaction_leaves_the_transaction_usable(int rows, int cap)
    {
        // The writer loads its index inside the batch's transaction. Cancelling the export there failed it (57014), or
        // the next statement when the cancel came late, and the transaction refused every later command (25P02).
        var table = $"khr_tx_{rows}";
        await FillAsync(table, Rows(rows));
        await using var conn = new NpgsqlConnection(db.ConnectionString);
        await conn.OpenAsync();
        await using var tx = await conn.BeginTransactionAsync();
        var index = new KeyHashIndex(cap);
        var complete = await KeyHashReader.LoadAsync(conn, $"COPY (SELECT i4, h FROM {table}) TO STDOUT (FORMAT BINARY)", [Column("i4", PgKind.Int32)], true, Seed, index, default);

        Assert.False(complete);
        Assert.Equal(cap, index.Count);
        for (var i = 0; i < 3; i++)
        {
            await using var cmd = new NpgsqlCommand($"SELECT count(*) FROM {table}, pg_sleep(0.1)", conn, tx);
            Assert.Equal((long)rows, await cmd.ExecuteScalarAsync());
        }

        await tx.CommitAsync();
    }

    private static ulong Expected(HashAction add)
    {
        var hasher = new RowHasher(Seed);
        add(ref hasher);
        return KeyHashIndex.NonZero(hasher.Finish());
    }

    private static PgColumn Column(string name, PgKind kind) => new() { Name = name, Quoted = $"\"{name}\"", Kind = kind, SqlType = kind.ToString() };

    private static List<KeyRow> Rows(int count)
    {
        var random = new Random(19);
        var rows = new List<KeyRow>(count);
        for (var i = 0; i < count; i++)
        {
            rows.Add(new KeyRow(
                i,
                $"{Texts[i % Texts.Length]}#{i}",
                (short)(i % 2 == 0 ? -i % short.MaxValue : i % short.MaxValue),
                i % 3 == 0 ? -i : i * 7919,
                i % 5 == 0 ? long.MinValue + i : ((long)i << 33) + 1,
                i % 2 == 0,
                Guid.NewGuid(),
                new DateOnly(1950, 1, 1).AddDays(i * 7 % 40_000),
                i % 11 == 0 ? null : (ulong)random.NextInt64()));
        }

        return rows;
    }

    private async Task FillAsync(string table, List<KeyRow> rows)
    {
        await db.ExecuteAsync($"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int, t text, i2 smallint, i4 int, i8 bigint, b bool, u uuid, d date, h bigint)");
        await using var conn = new NpgsqlConnection(db.ConnectionString);
        await conn.OpenAsync();
        await using var importer = await conn.BeginBinaryImportAsync($"COPY {table} FROM STDIN (FORMAT BINARY)");
        foreach (var r in rows)
        {
            await importer.StartRowAsync();
            await importer.WriteAsync(r.Id, NpgsqlDbType.Integer);
            await importer.WriteAsync(r.Text, NpgsqlDbType.Text);
            await importer.WriteAsync(r.Short, NpgsqlDbType.Smallint);
            await importer.WriteAsync(r.Int, NpgsqlDbType.Integer);
            await importer.WriteAsync(r.Long, NpgsqlDbType.Bigint);
            await importer.WriteAsync(r.Flag, NpgsqlDbType.Boolean);
            await importer.WriteAsync(r.Uuid, NpgsqlDbType.Uuid);
            await importer.WriteAsync(r.Date, NpgsqlDbType.Date);
            if (r.RowHash is { } h)
            {
                await importer.WriteAsync(unchecked((long)h), NpgsqlDbType.Bigint);
            }
            else
            {
                await importer.WriteNullAsync();
            }
        }

        await importer.CompleteAsync();
    }

    private async Task<KeyHashIndex> LoadAsync(string table, PgColumn[] keys, bool hasHash)
    {
        await using var conn = new NpgsqlConnection(db.ConnectionString);
        await conn.OpenAsync();
        var index = new KeyHashIndex(1_000_000);
        var columns = string.Join(", ", keys.Select(k => k.Quoted)) + (hasHash ? ", h" : string.Empty);
        Assert.True(await KeyHashReader.LoadAsync(conn, $"COPY (SELECT {columns} FROM {table}) TO STDOUT (FORMAT BINARY)", keys, hasHash, Seed, index, default));
        return index;
    }

    private delegate void HashAction(ref RowHasher hasher);

    private sealed record KeyRow(int Id, string Text, short Short, int Int, long Long, bool Flag, Guid Uuid, DateOnly Date, ulong? RowHash);
}
