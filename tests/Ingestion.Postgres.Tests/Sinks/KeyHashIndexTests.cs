using Ingestion.Postgres.Sinks;

namespace Ingestion.Postgres.Tests.Sinks;

/// <summary>The writer's in-memory key index: exact lookups across its shards, its cap, and memory in step with its rows.</summary>
public class KeyHashIndexTests
{
    [Fact]
    public void Every_key_set_is_found_with_its_last_row_hash_and_no_other_key_is()
    {
        var random = new Random(7);
        var index = new KeyHashIndex(1_000_000);
        var expected = new Dictionary<ulong, ulong>();
        while (expected.Count < 200_000)
        {
            var key = KeyHashIndex.NonZero((ulong)random.NextInt64());
            var row = (ulong)random.NextInt64();
            expected[key] = row;
            Assert.True(index.Set(key, row));
        }

        foreach (var key in expected.Keys.Where((_, i) => i % 2 == 0).ToList())
        {
            expected[key] = ~expected[key];
            Assert.True(index.Set(key, expected[key]));
        }

        Assert.Equal(expected.Count, index.Count);
        foreach (var (key, row) in expected)
        {
            Assert.True(index.TryGetValue(key, out var found));
            Assert.Equal(row, found);
        }

        for (var i = 0; i < 10_000; i++)
        {
            var other = KeyHashIndex.NonZero((ulong)random.NextInt64());

            // A prefetch is a hint only: any key, known or not, leaves the index as it was.
            index.Prefetch(other);
            index.Prefetch(ulong.MaxValue - (ulong)i);
            Assert.Equal(expected.ContainsKey(other), index.TryGetValue(other, out _));
        }

        Assert.False(index.Overflowed);
        Assert.Equal(expected.Count, index.Count);
    }

    [Fact]
    public void Past_its_cap_a_new_key_is_refused_and_marks_the_index_overflowed_while_known_keys_still_update()
    {
        var index = new KeyHashIndex(1_000);
        for (ulong k = 1; k <= 1_000; k++)
        {
            Assert.True(index.Set(k, k));
        }

        Assert.False(index.Overflowed);
        Assert.False(index.Set(5_000, 1));
        Assert.True(index.Overflowed);
        Assert.False(index.TryGetValue(5_000, out _));
        Assert.True(index.Set(10, 99));
        Assert.True(index.TryGetValue(10, out var updated));
        Assert.Equal(99UL, updated);
        Assert.Equal(1_000, index.Count);
    }

    [Fact]
    public void A_streaming_setter_sets_every_key_in_arrival_order_once_flushed_and_stops_when_the_index_is_full()
    {
        var index = new KeyHashIndex(1_000);
        var setter = new KeyHashIndex.StreamingSetter(index);
        for (ulong k = 1; k <= 20; k++)
        {
            Assert.True(setter.Add(k, k * 10));
        }

        // The same key again, then again within the held-back window: the last one wins, as in arrival order.
        Assert.True(setter.Add(3, 1));
        Assert.True(setter.Add(3, 2));
        Assert.True(index.Count < 20, "keys are held back until flushed");
        Assert.True(setter.Flush());
        Assert.Equal(20, index.Count);
        Assert.True(index.TryGetValue(3, out var three));
        Assert.Equal(2UL, three);
        Assert.True(index.TryGetValue(20, out var twenty));
        Assert.Equal(200UL, twenty);
        Assert.True(setter.Flush());

        var small = new KeyHashIndex(5);
        var full = new KeyHashIndex.StreamingSetter(small);
        var added = 0;
        while (full.Add((ulong)added + 1, 1))
        {
            added++;
        }

        // Refused by the index, a key past its cap surfaces once its held-back turn comes.
        Assert.Equal(5 + KeyHashIndex.PrefetchDistance, added);
        Assert.True(small.Overflowed);
        Assert.Equal(5, small.Count);
        Assert.False(full.Flush());
    }

    [Fact]
    public void Its_slots_grow_with_its_rows_at_most_about_twice_over_reusing_the_pages_doubled_shards_leave()
    {
        var small = new KeyHashIndex(3_000_000);
        var smallSlots = small.Slots;
        Assert.True(smallSlots <= 16 * KeyHashIndex.ShardCount, $"an empty index has {smallSlots} slots");
        Assert.Equal(0, small.PagesAllocated);

        var full = new KeyHashIndex(3_000_000);
        for (ulong k = 1; k <= 3_000_000; k++)
        {
            Assert.True(full.Set(k * 0x9E3779B97F4A7C15UL, k));
        }

        // 3M rows at a load factor between 3/8 and 3/4: 4M-8M slots (16 bytes each), never one huge table.
        Assert.InRange(full.Slots, 4_000_000, 8_000_000);
        Assert.Equal(3_000_000, full.Count);

        // Every shard doubled through one, two and four pages. Had each doubling allocated afresh, the pages of the
        // sizes left behind would add about three quarters again; reused, all but a shard's worth are in use.
        var inUse = full.Slots / KeyHashIndex.SlotsPerPage;
        Assert.InRange(full.PagesAllocated, inUse, inUse + 8);

        // Across pages, and across the doublings that moved them: every key is found with its row hash, no other is.
        for (ulong k = 1; k <= 3_000_000; k++)
        {
            Assert.True(full.TryGetValue(k * 0x9E3779B97F4A7C15UL, out var row), $"key {k} lost");
            Assert.Equal(k, row);
        }

        for (ulong k = 3_000_001; k <= 3_100_000; k++)
        {
            Assert.False(full.TryGetValue(k * 0x9E3779B97F4A7C15UL, out _));
        }
    }
}
