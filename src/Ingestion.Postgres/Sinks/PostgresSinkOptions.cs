using Ingestion.Sinks;

namespace Ingestion.Postgres.Sinks;

/// <summary>Settings of the PostgreSQL sink, bound from <c>Ingestion:Postgres:Sink</c>.</summary>
public sealed class PostgresSinkOptions
{
    /// <summary>The configuration section name under <c>Ingestion:Postgres</c>.</summary>
    public const string SectionName = "Sink";

    /// <summary>
    /// The most rows of a target table a writer remembers as (key hash, row hash) pairs, about 22 bytes
    /// each (3,000,000 rows: about 64 MB). Remembered rows whose hash did not change are skipped before
    /// they cross the wire, and keys known to be new are copied straight into the table. Past the limit
    /// the writer still produces exact counts, but sends the rows it does not remember through a staging
    /// table; a first load into a table it made (key not built yet) instead keeps copying them, and the key build at
    /// the end keeps the newest row of any key copied twice, moving its count from created to updated or unchanged, so
    /// memory stays flat however large the load. 0 disables the index.
    /// </summary>
    public int KeyIndexMaxRows { get; set; } = 3_000_000;

    /// <summary>
    /// The fill factor of tables the sink creates (10-100). Free space in each page lets an update write
    /// the new row version in the same page (a HOT update, about 3x cheaper); 100 packs the pages. A primary key
    /// built after a first load (<see cref="BuildKeyIndexAfterFirstLoad"/>) leaves the same share free in its leaf
    /// pages, so the updates that cannot stay in their page do not split a packed index.
    /// </summary>
    public int CreatedTableFillFactor { get; set; } = 70;

    /// <summary>
    /// Whether a Merge or Replace batch is sent in key order rather than arrival order (default true). Rows of one
    /// batch have distinct keys, so the order changes no result; in key order consecutive rows go to neighbouring
    /// entries of the key's B-tree index, which makes inserting them cheaper for the server when the source
    /// interleaves keys (about 10-20% less server time for a first load of 10,000-row batches whose keys come from
    /// 50 interleaved groups). Sorting costs the client a few milliseconds per batch, spent while the previous batch
    /// is written; once a batch sends few of its rows (a re-run of unchanged rows), later batches are sorted only as
    /// far as the rows they send. Append batches always keep arrival order (a serial column numbers rows as they came).
    /// </summary>
    public bool SendRowsInKeyOrder { get; set; } = true;

    /// <summary>
    /// Whether a table the sink creates for a Merge source (committing batch by batch) gets its primary key after the rows of that first run are
    /// in (default true), as <c>pg_restore</c> does: one sorted index build at the end instead of an index insert per
    /// row, which makes a large first load about 1.5-2x faster for the server. The writer knows every key of the new
    /// table up to <see cref="KeyIndexMaxRows"/> (which must be above 0), so rows stay exact without the index; it
    /// builds the key earlier when a batch needs the server to look keys up (a key sent again by a later batch, a
    /// table it did not fill from empty in this run). Past <see cref="KeyIndexMaxRows"/> rows it keeps copying and marks
    /// the table as possibly holding a key twice; building the key then keeps the newest row of each such key. Until
    /// the run ends, readers see the rows without the key index (and, past the limit, possibly an older row of a
    /// repeated key beside its newer one). A run that stops before its end
    /// leaves the table without it; the next run writing the table builds it before writing. Should another writer
    /// have added rows with the same key in the meantime, building it fails, naming the key. Runs in one transaction
    /// (Replace, WholeRun, dry runs) never defer it, and build a missing one on a side connection before writing.
    /// </summary>
    public bool BuildKeyIndexAfterFirstLoad { get; set; } = true;

    /// <summary>
    /// Whether a batch transaction commits without waiting for its WAL to reach the disk (<c>synchronous_commit = off</c>
    /// for that transaction only; default false). The batch's rows, checkpoint and job-row counts commit together, so a
    /// server crash can only undo the last few batches (about the last 0.6 s) as a whole, and the next run reads them
    /// again from the checkpoint that survived: nothing is lost or counted twice. Before a run reports its end, the
    /// writer waits for everything it committed to be durable. Worth it where a flush is slow (network storage) or the
    /// load is large: on a local disk it made no measurable difference at 1M rows, but at 10M rows, where the disk is
    /// busy with the load's own writes, a one-connection load committing every 10,000 rows took 27.9 s to copy with
    /// durable commits against 20.3 s without (benchmarks/RESULTS.md, session 18). First loads commit this way by
    /// default (<see cref="AsynchronousFirstLoadCommits"/>).
    /// </summary>
    public bool AsynchronousBatchCommits { get; set; }

    /// <summary>
    /// Whether the batches of a first load commit without waiting for their WAL to reach the disk (default true), as
    /// <see cref="AsynchronousBatchCommits"/> does for every batch: a Merge run committing batch by batch into a table
    /// whose primary key is not built yet (see <see cref="BuildKeyIndexAfterFirstLoad"/>). Such a table is only whole
    /// once its key is built at the run's end, in a transaction that waits for the disk and so makes every batch before
    /// it durable too. A server crash during the load undoes at most the last batches (about the last 0.6 s) with their
    /// checkpoint and job-row counts, and the next run reads those records again, as it would after a crash in any
    /// batch. At 10M rows this saved 4-6 s of a 37-42 s load on these machines (benchmarks/RESULTS.md, session 18).
    /// Set it to false to have each first-load batch wait for the disk before the next commits.
    /// </summary>
    public bool AsynchronousFirstLoadCommits { get; set; } = true;

    /// <summary>
    /// How much a first load's server session writes before it asks the operating system to start writing those pages
    /// to disk (<c>backend_flush_after</c>, set on the writer's sessions while they load a table the sink made whose key
    /// is not built yet; default 2048 kB, the server's maximum; 0 leaves the server's setting). A first load writes each
    /// page once, so nothing is gained by leaving gigabytes of it dirty in the page cache, where they are flushed in bursts
    /// that stall the load and the key build when a checkpoint syncs them. At 10M rows it saved 3-4 s of a 33-37 s load
    /// on these machines, and made no difference at 1M (benchmarks/RESULTS.md, session 18). Sessions go back to the pool with their settings reset.
    /// </summary>
    public int FirstLoadFlushAfterKilobytes { get; set; } = 2048;

    /// <summary>
    /// Whether a batch is written on a second connection while the batch before it is still being written (default
    /// true): its rows the key index calls new are copied into the table (also in a first load, before the key is
    /// built), and, in a table whose key is built, its changed rows of stored keys staged and updated. The server then
    /// works on two batches at once instead of leaving a core idle between them; the batch still commits after the one
    /// before it, with its own checkpoint and job-row counts. On these machines a 1M-row load into a keyed table went
    /// from 0.7 of a hand-written COPY to 0.9-1.2 of it, a re-run that changes every row from 0.35-0.4 to 0.5 of it, and
    /// a first load into a new table gained about a tenth (benchmarks/RESULTS.md, sessions 10 and 11). It is used only
    /// where the earlier batch can never wait for what the early write holds: a Merge run committing batch by batch, no
    /// trigger, rule or foreign key on the table, every row new by the key index (past <see cref="KeyIndexMaxRows"/>
    /// only in a table still without its key, a first load, which copies such rows either way) or (in a table with the
    /// key built and the hash column, by a complete index) a changed row whose key no record of the batch before has, and no copy
    /// starts while the writer builds a key; anything else (and any failure of the early write, or an update that finds
    /// fewer rows than it sent, which is then rolled back) takes the ordinary path. Each writer then holds two
    /// connections instead of one. In a first load into a table the sink made, a batch copied early is encoded whole
    /// first and its records are released (when the runner gave them over: no sink hook reads them), so the collector
    /// reclaims them young; the write uses the encoded bytes for anything it still does with those rows (docs/sink.md).
    /// A first load's batch not copied early is encoded and released the same way on the runner's reading thread.
    /// </summary>
    public bool CopyAheadOnSecondConnection { get; set; } = true;

    /// <summary>
    /// How long batches that write nothing may wait for a commit (default 2 seconds; zero commits every batch). A batch
    /// writes nothing when every row is stored unchanged and nothing is rejected, as in a re-run of data that did not
    /// change. Such a batch then skips its own transaction: its counts and its checkpoint are committed with the next
    /// batch that writes, when the last commit is this old, or when the run completes. A crash meanwhile loses only
    /// that checkpoint: the next run reads those unchanged records again, and the job row's counts stay those of what
    /// committed. The runner allows it only for runs committing batch by batch with no sink hook attached
    /// (<see cref="SinkBatch{TRecord}.MayDeferCommit"/>).
    /// </summary>
    public TimeSpan QuietBatchCommitInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The most characters of a rejected record's raw value that are stored.</summary>
    public int MaxRejectedValueLength { get; set; } = 1000;

    /// <summary>The <c>application_name</c> prefix of the writers' connections (the source name is appended), to find them in <c>pg_stat_activity</c>.</summary>
    public string ApplicationName { get; set; } = "ingestion";

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <returns>The problems; empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        const string prefix = "Ingestion:Postgres:Sink";
        if (KeyIndexMaxRows < 0)
        {
            errors.Add($"{prefix}:KeyIndexMaxRows must not be negative (was {KeyIndexMaxRows}).");
        }

        if (FirstLoadFlushAfterKilobytes is < 0 or > 2048)
        {
            errors.Add($"{prefix}:FirstLoadFlushAfterKilobytes must be between 0 and 2048, the server's limit for backend_flush_after (was {FirstLoadFlushAfterKilobytes}).");
        }

        if (CreatedTableFillFactor is < 10 or > 100)
        {
            errors.Add($"{prefix}:CreatedTableFillFactor must be between 10 and 100 (was {CreatedTableFillFactor}).");
        }

        if (QuietBatchCommitInterval < TimeSpan.Zero)
        {
            errors.Add($"{prefix}:QuietBatchCommitInterval must not be negative (was {QuietBatchCommitInterval}).");
        }

        if (MaxRejectedValueLength < 16)
        {
            errors.Add($"{prefix}:MaxRejectedValueLength must be at least 16 (was {MaxRejectedValueLength}).");
        }

        if (string.IsNullOrWhiteSpace(ApplicationName) || ApplicationName.Length > 40)
        {
            errors.Add($"{prefix}:ApplicationName must be 1-40 characters.");
        }

        return errors;
    }
}
