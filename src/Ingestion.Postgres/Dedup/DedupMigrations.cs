using Ingestion.Postgres.Migrations;

namespace Ingestion.Postgres.Dedup;

/// <summary>The migrations of the <c>dedup</c> component of the library's schema.</summary>
public static class DedupMigrations
{
    /// <summary>The component name.</summary>
    public const string Component = "dedup";

    /// <summary>
    /// Version 1: the <c>pg_trgm</c> and <c>unaccent</c> extensions (postgresql-contrib); <c>dedup_records</c>
    /// (one row per source record under dedup: its normalized search text and time with a trigram GIN index,
    /// its encoded match profile, and its canonical record); <c>record_links</c> (each link or review
    /// candidate with score, reason, status and reviewer); <c>dedup_merged</c> (merged canonical rows of the
    /// merge policy); the <c>dedup_canonical</c> view (each canonical record with its source aliases); and
    /// <c>dedup_fold(text, stop-word pattern)</c>, the SQL twin of the .NET normalizer built on <c>unaccent</c>.
    /// </summary>
    public static PostgresMigration V1 { get; } = new(Component, 1, "record_links, dedup_records with trigram index, canonical view", """
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE EXTENSION IF NOT EXISTS unaccent;

        CREATE TABLE {schema}.dedup_records (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            record_type text NOT NULL,
            source text NOT NULL,
            source_id text NOT NULL,
            match_text text NOT NULL,
            match_time timestamptz,
            profile jsonb NOT NULL,
            canonical_id bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (record_type, source, source_id));
        CREATE INDEX dedup_records_text_trgm ON {schema}.dedup_records USING gin (match_text gin_trgm_ops);
        CREATE INDEX dedup_records_time ON {schema}.dedup_records (record_type, match_time);
        CREATE INDEX dedup_records_canonical ON {schema}.dedup_records (canonical_id);

        CREATE FUNCTION {schema}.dedup_records_self_canonical() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.canonical_id IS NULL THEN
                NEW.canonical_id := NEW.id;
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER dedup_records_self_canonical BEFORE INSERT ON {schema}.dedup_records
            FOR EACH ROW EXECUTE FUNCTION {schema}.dedup_records_self_canonical();

        CREATE TABLE {schema}.record_links (
            record_type text NOT NULL,
            record_id bigint NOT NULL REFERENCES {schema}.dedup_records (id) ON DELETE CASCADE,
            target_id bigint NOT NULL REFERENCES {schema}.dedup_records (id) ON DELETE CASCADE,
            score real NOT NULL,
            reason text NOT NULL,
            status text NOT NULL CHECK (status IN ('linked', 'review', 'confirmed', 'rejected', 'reported')),
            run_id uuid,
            created_at timestamptz NOT NULL DEFAULT now(),
            reviewed_at timestamptz,
            reviewed_by text,
            PRIMARY KEY (record_id, target_id),
            CHECK (record_id <> target_id));
        CREATE INDEX record_links_target ON {schema}.record_links (target_id);
        CREATE INDEX record_links_status ON {schema}.record_links (record_type, status);

        CREATE TABLE {schema}.dedup_merged (
            record_type text NOT NULL,
            canonical_id bigint NOT NULL REFERENCES {schema}.dedup_records (id) ON DELETE CASCADE,
            record jsonb NOT NULL,
            field_sources jsonb NOT NULL,
            conflicts jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (record_type, canonical_id));

        CREATE VIEW {schema}.dedup_canonical AS
            SELECT c.record_type, c.id AS canonical_id, c.source AS canonical_source, c.source_id AS canonical_source_id,
                   c.profile, count(*) AS members,
                   array_agg(m.source || ':' || m.source_id ORDER BY m.source, m.source_id) AS aliases
            FROM {schema}.dedup_records c
            JOIN {schema}.dedup_records m ON m.canonical_id = c.id
            GROUP BY c.id;

        CREATE FUNCTION {schema}.dedup_fold(value text, stop_words text) RETURNS text
            LANGUAGE sql STABLE PARALLEL SAFE AS $$
            WITH folded AS (
                SELECT btrim(regexp_replace(lower(unaccent(coalesce(value, ''))), '[^[:alnum:]]+', ' ', 'g')) AS f),
            kept AS (
                SELECT f, btrim(regexp_replace(regexp_replace(' ' || f || ' ', coalesce(stop_words, ''), '', 'g'), ' +', ' ', 'g')) AS k FROM folded)
            SELECT CASE WHEN stop_words IS NULL OR stop_words = '' OR k = '' THEN f ELSE k END FROM kept
            $$;
        """);

    /// <summary>
    /// Version 2: blocking instead of a trigram search. <c>dedup_blocks</c> (one row per blocking key of a record, see
    /// <see cref="Ingestion.Dedup.MatchBlocking"/>; a btree primary key on <c>(key, record_id)</c>, so lookups stay index
    /// probes however large the table grows); <c>dedup_records.block_keys</c> (the keys a record is filed under, to remove
    /// them when it changes) and <c>matched</c> (false from when a record is staged until its matching commits: a run that
    /// fails in between leaves it pending, and the source's next batch or completion matches it); <c>dedup_sources</c>
    /// (the sources of each record type). The trigram GIN index is dropped: its pending list (<c>fastupdate</c>) made the
    /// planner scan every record for each incoming one after large loads. Records of version 1 are given their keys on
    /// first use.
    /// </summary>
    public static PostgresMigration V2 { get; } = new(Component, 2, "dedup_blocks (btree), pending matches, no trigram GIN", """
        DROP INDEX IF EXISTS {schema}.dedup_records_text_trgm;
        ALTER TABLE {schema}.dedup_records
            ADD COLUMN matched boolean NOT NULL DEFAULT true,
            ADD COLUMN block_keys bigint[];
        CREATE INDEX dedup_records_pending ON {schema}.dedup_records (record_type, source, id) WHERE NOT matched;
        CREATE INDEX dedup_records_unblocked ON {schema}.dedup_records (record_type, id) WHERE block_keys IS NULL;

        CREATE TABLE {schema}.dedup_blocks (
            key bigint NOT NULL,
            record_id bigint NOT NULL,
            PRIMARY KEY (key, record_id));

        CREATE TABLE {schema}.dedup_sources (
            record_type text NOT NULL,
            source text NOT NULL,
            PRIMARY KEY (record_type, source));
        INSERT INTO {schema}.dedup_sources SELECT DISTINCT record_type, source FROM {schema}.dedup_records;
        """);

    /// <summary>
    /// Version 3: coarse blocks checked on the exact place and time. <c>dedup_blocks</c> loses its primary key and gains
    /// the point of a record as a unit vector (<c>x</c>, <c>y</c>, <c>z</c>) and its time (<c>t</c>, epoch seconds), in a
    /// btree on <c>key</c> that includes them, so the candidate query reads a block from the index alone and keeps only
    /// the entries within the maximum distance and the tolerance (the cells and buckets are wider than the distance:
    /// fewer keys probed per record). The keys change with the wider cells: every record is given its new keys on first
    /// use. The unused index on <c>(record_type, match_time)</c> is dropped (one index less to write per record).
    /// <c>dedup_sources.unplaced</c>: whether a source has records filed without a place (no point, no date), which only
    /// the keys of their whole name find; the records of other sources probe those keys only for such sources (true for
    /// the sources known before, and for sources of rows indexed from a table).
    /// </summary>
    public static PostgresMigration V3 { get; } = new(Component, 3, "dedup_blocks with place and time, wider cells", """
        DROP TABLE {schema}.dedup_blocks;
        CREATE TABLE {schema}.dedup_blocks (
            key bigint NOT NULL,
            record_id bigint NOT NULL,
            x real,
            y real,
            z real,
            t double precision);
        CREATE INDEX dedup_blocks_key ON {schema}.dedup_blocks (key) INCLUDE (record_id, x, y, z, t);
        DROP INDEX IF EXISTS {schema}.dedup_records_time;
        UPDATE {schema}.dedup_records SET block_keys = NULL WHERE block_keys IS NOT NULL;
        ALTER TABLE {schema}.dedup_sources ADD COLUMN unplaced boolean NOT NULL DEFAULT true;
        """);

    /// <summary>Every migration of the component, in order.</summary>
    public static IReadOnlyList<PostgresMigration> All { get; } = [V1, V2, V3];
}
