namespace Ingestion.Faults;

/// <summary>What must hold after a round, and after every kill.</summary>
internal static class RoundChecks
{
    /// <summary>Counted by <see cref="CheckNotAheadAsync"/> between <see cref="CheckAsync"/> calls.</summary>
    private static long _ahead;

    /// <summary>After a fault: every row up to the saved cursor is in the table with the round's current values (a checkpoint never runs ahead of its data).</summary>
    public static async Task CheckNotAheadAsync(Round round)
    {
        if (!await round.ScalarAsync<bool>("SELECT to_regclass('ingestion.source_state') IS NOT NULL AND to_regclass('public.fault_items') IS NOT NULL"))
        {
            return;
        }

        var missing = await round.ScalarAsync<long>(
            $"""
            SELECT COALESCE((SELECT s.cursor::bigint FROM ingestion.source_state s WHERE s.source = 'faults'), 0)
                 - (SELECT count(DISTINCT num) FROM fault_items WHERE num <= COALESCE((SELECT s.cursor::bigint FROM ingestion.source_state s WHERE s.source = 'faults'), 0)
                                                                AND value = num * 7 % 1000003 + {round.Version})
            """);
        if (missing > 0)
        {
            Interlocked.Increment(ref _ahead);
            Console.WriteLine($"  {round.Database}: the checkpoint is {missing} rows ahead of the committed data");
        }
    }

    /// <summary>After a round's completion: exactly the source's rows and values, the key, no running job, counts adding up, no secret shown.</summary>
    public static async Task CheckAsync(Round round, Tally tally)
    {
        tally.Ahead += Interlocked.Exchange(ref _ahead, 0);
        if (!await round.ScalarAsync<bool>("SELECT to_regclass('public.fault_items') IS NOT NULL"))
        {
            tally.Lost += round.Rows;
            Console.WriteLine($"  {round.Database}: no table");
            return;
        }

        var count = await round.ScalarAsync<long>("SELECT count(*) FROM fault_items");
        var distinct = await round.ScalarAsync<long>("SELECT count(DISTINCT num) FROM fault_items");
        var inRange = await round.ScalarAsync<long>($"SELECT count(DISTINCT num) FROM fault_items WHERE num BETWEEN 1 AND {round.Rows}");
        var wrong = await round.ScalarAsync<long>($"SELECT count(*) FROM fault_items WHERE value <> num * 7 % 1000003 + {round.Version} OR label <> 'item ' || num");
        var hasKey = await round.ScalarAsync<bool>("SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = 'public.fault_items'::regclass AND indisprimary)");
        var stuck = await round.ScalarAsync<long>("SELECT count(*) FROM ingestion.import_jobs WHERE status = 'Running'");
        var badCounts = await round.ScalarAsync<long>("SELECT count(*) FROM ingestion.import_jobs WHERE status <> 'Running' AND read <> created + updated + unchanged + duplicates + rejected");
        var leakedRows = await round.ScalarAsync<long>(
            $"SELECT (SELECT count(*) FROM ingestion.import_jobs WHERE error LIKE '%{round.Canary}%') + (SELECT count(*) FROM ingestion.rejected_records WHERE reason LIKE '%{round.Canary}%' OR raw_value LIKE '%{round.Canary}%')");
        var leakedLines = round.Output.Count(l => l.Contains(round.Canary, StringComparison.Ordinal));

        var lost = round.Rows - inRange + wrong;
        tally.Lost += lost;
        tally.Duplicated += count - distinct;
        tally.NoKey += hasKey ? 0 : 1;
        tally.Stuck += stuck;
        tally.BadCounts += badCounts;
        tally.Leaked += leakedRows + leakedLines;
        if (lost + (count - distinct) + stuck + badCounts + leakedRows + leakedLines > 0 || !hasKey)
        {
            Console.WriteLine($"  {round.Database}: rows {count} (distinct {distinct} of {round.Rows}), wrong values {wrong}, key {hasKey}, running jobs {stuck}, counts not adding up {badCounts}, secrets shown {leakedRows + leakedLines}");
            foreach (var line in round.Output.TakeLast(15))
            {
                Console.WriteLine($"    {line}");
            }
        }
    }
}
