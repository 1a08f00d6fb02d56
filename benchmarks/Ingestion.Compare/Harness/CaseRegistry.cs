using Ingestion.Compare.Cases;

namespace Ingestion.Compare.Harness;

/// <summary>
/// Every case of the comparison runner, in the order they run, and the goals checked after them.
/// To add a case: write a class deriving from <see cref="CompareCase"/> in <c>Cases/</c> and add one
/// line to <see cref="All"/> (and, when it has a goal, one line to <see cref="Goals"/>).
/// </summary>
public static class CaseRegistry
{
    /// <summary>Creates the cases, in run order (baselines first, so ratios can be computed).</summary>
    /// <returns>New case instances.</returns>
    public static IReadOnlyList<CompareCase> All() =>
    [
        // Baselines: the same rows, loaded the way people do without this library.
        new RawCopyPkCase(),
        new RawCopyThenPkCase(),
        new RawCopyBatchesThenPkCase(),
        new RawCopyBatchesTwoConnectionsCase(),
        new RawCopyBatchesThenPkCase(keyed: true),
        new RawCopyBatchesTwoConnectionsCase(keyed: true),
        new RawUpdateAllCase(),
        new PsqlCopyCsvCase(),
        new EfCoreInsertCase(),
        new DapperUnnestUpsertCase(),

        // Ours: the runner and the PostgreSQL sink, on the same rows.
        new OursFirstLoadCase(),
        new OursFirstLoadKeyedCase(),
        new OursMixedCase(),
        new OursUnchangedCase(),
        new OursUpdateAllCase(),
        new OursCsvFileCase(),

        // The seeds' shape: seven sources of different kinds in one parallel RunMany, first load then unchanged.
        new SeedShapeCase(unchanged: false),
        new SeedShapeCase(unchanged: true),

        // The durable work queue (absolute goals, noted after each line: claim_single >= 2,000/s, claim_batched >= 20,000/s, enqueue_bulk >= 200,000/s).
        new QueueEnqueueSingleCase(),
        new QueueEnqueueBulkCase(),
        new QueueCopyCeilingCase(sorted: false),
        new QueueCopyCeilingCase(sorted: true),
        new QueueCopyItemsCase(chunked: false),
        new QueueCopyItemsCase(chunked: true),
        new QueueClaimSingleCase(),
        new QueueClaimBatchedCase(),
        new QueueReconcileCase(),

        // Cross-source dedup: incoming records matched against ten times as many existing ones.
        new DedupMatchCase(withDate: true),
        new DedupMatchCase(withDate: false),
    ];

    /// <summary>The goals: the case's rate over the baseline's must reach the minimum.</summary>
    public static IReadOnlyList<Goal> Goals { get; } =
    [
        new("ours_first_load", "raw_copy_pk", 0.95),
        new("ours_first_load", "raw_copy_then_pk", 0.95),
        new("ours_first_load_keyed", "raw_copy_pk", 0.95),
        new("ours_mixed", "raw_copy_pk", 0.5),
        new("ours_unchanged", "raw_copy_pk", 3.0),
        new("ours_update_all", "raw_copy_pk", 0.5),
        new("ours_csv_file", "psql_copy_csv", 1.2),
        new("seed_shape", "raw_copy_pk", 0.6),
        new("seed_shape_unchanged", "raw_copy_pk", 2.0),
        new("queue_enqueue_bulk", "queue_copy_pk", 0.9),
        new("queue_enqueue_bulk", "queue_copy_items", 0.9),
    ];

    /// <summary>
    /// Ratios printed without a goal, for what they explain: the first load against a hand-written load that also
    /// commits batch by batch (on one connection and on two, into a bare table and into a keyed one), the update of every row against the server's own cost of one hand-written update, the bulk
    /// enqueue against a hand-written COPY of its items in the same order (sorted a chunk at a time), and that order's cost
    /// against one sort of the whole input.
    /// </summary>
    public static IReadOnlyList<ReferenceRatio> References { get; } =
    [
        new("raw_copy_batches_then_pk", "raw_copy_then_pk"),
        new("raw_copy_batches_2conn_then_pk", "raw_copy_batches_then_pk"),
        new("raw_copy_pk_batches", "raw_copy_pk"),
        new("raw_copy_pk_batches_2conn", "raw_copy_pk_batches"),
        new("ours_first_load_keyed", "raw_copy_pk_batches"),
        new("ours_first_load", "raw_copy_batches_then_pk"),
        new("raw_update_all", "raw_copy_pk"),
        new("ours_update_all", "raw_update_all"),
        new("queue_enqueue_bulk", "queue_copy_items_chunked"),
        new("queue_copy_items_chunked", "queue_copy_items"),
    ];
}
