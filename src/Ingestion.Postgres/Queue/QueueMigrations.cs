using Ingestion.Postgres.Migrations;

namespace Ingestion.Postgres.Queue;

/// <summary>The tables of the durable work queue (component <c>queue</c>).</summary>
public static class QueueMigrations
{
    /// <summary>The component name of the queue's migrations.</summary>
    public const string Component = "queue";

    /// <summary>
    /// v1: <c>queues</c> (name to id), <c>queue_items</c> (the hot table: pending, running and dead items, keyed by
    /// queue and key, with partial indexes for ready, leased and dead items) and <c>queue_done</c> (completed keys,
    /// so a done key stays known until pruned, with the completion time for throughput and pruning).
    /// Keys use the "C" collation: byte order, the order of storage listings, and cheap comparisons.
    /// </summary>
    public static IPostgresMigration V1 { get; } = new PostgresMigration(Component, 1, "work queue tables", """
        CREATE TABLE {schema}.queues (
            id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE {schema}.queue_items (
            queue_id int NOT NULL,
            key text COLLATE "C" NOT NULL,
            state smallint NOT NULL DEFAULT 0,
            priority int NOT NULL DEFAULT 0,
            run_after timestamptz NOT NULL DEFAULT now(),
            attempts int NOT NULL DEFAULT 0,
            enqueued_at timestamptz NOT NULL DEFAULT now(),
            lease_owner text,
            lease_until timestamptz,
            failed_at timestamptz,
            last_error text,
            payload text,
            PRIMARY KEY (queue_id, key),
            CONSTRAINT queue_items_state CHECK (state IN (0, 1, 3))) WITH (fillfactor = 80);
        COMMENT ON COLUMN {schema}.queue_items.state IS '0 pending, 1 running (leased), 3 dead';
        CREATE INDEX queue_items_ready ON {schema}.queue_items (queue_id, priority DESC, run_after) WHERE state = 0;
        CREATE INDEX queue_items_leased ON {schema}.queue_items (queue_id, lease_until) WHERE state = 1;
        CREATE INDEX queue_items_dead ON {schema}.queue_items (queue_id, failed_at) WHERE state = 3;
        CREATE TABLE {schema}.queue_done (
            queue_id int NOT NULL,
            key text COLLATE "C" NOT NULL,
            attempts int NOT NULL,
            enqueued_at timestamptz NOT NULL,
            completed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (queue_id, key));
        CREATE INDEX queue_done_completed ON {schema}.queue_done (queue_id, completed_at);
        """);

    /// <summary>
    /// v2: <c>queue_done</c>'s completion-time index becomes a BRIN index. Every completion inserts into
    /// <c>queue_done</c>; a btree on the completion time cost each one an index insert, while completion times
    /// follow the table's physical order (rows are appended as items finish), which a BRIN index summarizes per
    /// range of pages at almost no cost per insert. Pruning and the throughput figure still find the rows by time.
    /// </summary>
    public static IPostgresMigration V2 { get; } = new PostgresMigration(Component, 2, "queue_done completion time as a BRIN index", """
        DROP INDEX IF EXISTS {schema}.queue_done_completed;
        CREATE INDEX IF NOT EXISTS queue_done_completed_brin ON {schema}.queue_done USING brin (completed_at);
        """);

    /// <summary>Every migration of the queue, in order.</summary>
    public static IReadOnlyList<IPostgresMigration> All { get; } = [V1, V2];
}
