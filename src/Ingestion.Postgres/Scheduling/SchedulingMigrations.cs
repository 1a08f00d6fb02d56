using Ingestion.Postgres.Migrations;

namespace Ingestion.Postgres.Scheduling;

/// <summary>The scheduler's tables (component <c>scheduling</c>).</summary>
public static class SchedulingMigrations
{
    /// <summary>The component name of the scheduler's migrations.</summary>
    public const string Component = "scheduling";

    /// <summary>
    /// v1: <c>schedule_slots</c> (one row per claimed slot: the claim that makes each slot run once across hosts,
    /// with its lease and final status) and <c>schedule_runs</c> (the history: one row per attempt or skipped slot,
    /// with host, status, attempt, start, finish, duration, error and JSON details).
    /// </summary>
    public static IPostgresMigration V1 { get; } = new PostgresMigration(Component, 1, "schedule slot claims and run history", """
        CREATE TABLE {schema}.schedule_slots (
            schedule text NOT NULL,
            slot_time timestamptz NOT NULL,
            source text NOT NULL,
            trigger text NOT NULL,
            host text NOT NULL,
            attempt int NOT NULL DEFAULT 1,
            status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'skipped')),
            lease_until timestamptz NOT NULL,
            claimed_at timestamptz NOT NULL,
            finished_at timestamptz,
            PRIMARY KEY (schedule, slot_time));
        CREATE INDEX schedule_slots_running ON {schema}.schedule_slots (lease_until) WHERE status = 'running';
        CREATE TABLE {schema}.schedule_runs (
            id uuid PRIMARY KEY,
            schedule text NOT NULL,
            source text NOT NULL,
            slot_time timestamptz NOT NULL,
            host text NOT NULL,
            trigger text NOT NULL,
            attempt int NOT NULL,
            status text NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'skipped', 'abandoned')),
            started_at timestamptz NOT NULL,
            finished_at timestamptz,
            duration_ms bigint GENERATED ALWAYS AS ((extract(epoch FROM (finished_at - started_at)) * 1000)::bigint) STORED,
            error text,
            details jsonb);
        CREATE INDEX schedule_runs_schedule_started ON {schema}.schedule_runs (schedule, started_at DESC);
        CREATE INDEX schedule_runs_slot ON {schema}.schedule_runs (schedule, slot_time);
        """);

    /// <summary>v2: <c>schedule_pauses</c> (one row per schedule an operator paused: when and by whom).</summary>
    public static IPostgresMigration V2 { get; } = new PostgresMigration(Component, 2, "paused schedules", """
        CREATE TABLE {schema}.schedule_pauses (
            schedule text PRIMARY KEY,
            paused_at timestamptz NOT NULL,
            paused_by text);
        """);

    /// <summary>
    /// v3: the <c>superseded</c> status, for a taken-over slot whose source was busy with a newer slot's live run
    /// (its error names that run).
    /// </summary>
    public static IPostgresMigration V3 { get; } = new PostgresMigration(Component, 3, "superseded slots", """
        ALTER TABLE {schema}.schedule_slots DROP CONSTRAINT IF EXISTS schedule_slots_status_check;
        ALTER TABLE {schema}.schedule_slots ADD CONSTRAINT schedule_slots_status_check
            CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'skipped', 'superseded'));
        ALTER TABLE {schema}.schedule_runs DROP CONSTRAINT IF EXISTS schedule_runs_status_check;
        ALTER TABLE {schema}.schedule_runs ADD CONSTRAINT schedule_runs_status_check
            CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'skipped', 'abandoned', 'superseded'));
        """);

    /// <summary>Every migration of the component, in order.</summary>
    public static IReadOnlyList<IPostgresMigration> All { get; } = [V1, V2, V3];
}
