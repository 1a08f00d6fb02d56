using System.Globalization;
using System.Text;
using Ingestion.Postgres.Sql;
using Ingestion.Sinks;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// How one record schema maps onto its target table: the checked columns with their accessors, the
/// key, whether the table has the library's row-hash column, and the SQL of every step. Built once per
/// writer and schema by <see cref="PrepareAsync"/>, which also creates or evolves the table.
/// </summary>
internal sealed class TableMapping<TRecord>
    where TRecord : class
{
    /// <summary>The hidden column holding the hash of a row's non-key values, in tables the sink creates.</summary>
    public const string HashColumn = "_ingestion_hash";

    private const string QuotedHash = "\"" + HashColumn + "\"";

    private TableMapping()
    {
    }

    public required RecordSchema Schema { get; init; }

    /// <summary>The quoted, schema-qualified target table.</summary>
    public required string Target { get; init; }

    /// <summary>The target for messages: <c>schema.table</c>.</summary>
    public required string DisplayName { get; init; }

    public required FieldAccessor<TRecord>[] Fields { get; init; }

    public required FieldAccessor<TRecord>[] KeyFields { get; init; }

    public required FieldAccessor<TRecord>[] ValueFields { get; init; }

    public required bool HasHash { get; init; }

    public required bool HasUniqueKey { get; init; }

    /// <summary>
    /// The table is one the sink made (it has the hash column) but its key index is not built yet: a first Merge load
    /// that builds it at the end (<see cref="PostgresSinkOptions.BuildKeyIndexAfterFirstLoad"/>), or one interrupted
    /// before that. The writer builds it (<see cref="PendingKey.AddPrimaryKey"/>) before it needs the server to look a key up.
    /// </summary>
    public bool KeyIndexPending { get; set; }

    /// <summary>
    /// Whether the table has a trigger, a rule or a foreign key of the user's: writing a row there may lock rows of other
    /// tables, so two of the writer's transactions may not write it at once (see <see cref="PostgresSinkOptions.CopyAheadOnSecondConnection"/>).
    /// </summary>
    public required bool HasTriggersRulesOrForeignKeys { get; init; }

    /// <summary>Whether the table lacked its key when mapped (so a rollback may have undone the key's build).</summary>
    public required bool KeyMadeLater { get; init; }

    /// <summary>
    /// Whether this table, filled without its key, may hold a key more than once: a first load copied keys past what
    /// its key index remembers (see <see cref="PendingKey.MayHoldRepeats"/>). Building the key then keeps the newest row.
    /// </summary>
    public bool MayHoldRepeats { get; set; }

    /// <summary>The key column names, for messages.</summary>
    public string KeyNames => string.Join(", ", KeyFields.Select(f => f.Column.Name));

    /// <summary>A <c>WHERE</c> condition restricting the table to this source's rows (default key), or empty.</summary>
    public required string SourceFilter { get; init; }

    public required int Id { get; init; }

    public string StageName => $"\"_ingestion_stage_{Id}\"";

    public string SeenName => $"\"_ingestion_seen_{Id}\"";

    private string ColumnList => string.Join(", ", Fields.Select(f => f.Column.Quoted)) + (HasHash ? ", " + QuotedHash : string.Empty);

    private string KeyList => string.Join(", ", KeyFields.Select(f => f.Column.Quoted));

    private string KeyJoin(string a, string b) => string.Join(" AND ", KeyFields.Select(f => $"{a}.{f.Column.Quoted} = {b}.{f.Column.Quoted}"));

    public string CopyIntoTarget => $"COPY {Target} ({ColumnList}) FROM STDIN (FORMAT BINARY)";

    public string CopyIntoStage => $"COPY {StageName} ({ColumnList}) FROM STDIN (FORMAT BINARY)";

    public string CreateStage => $"CREATE TEMP TABLE {StageName} ON COMMIT DROP AS SELECT {ColumnList} FROM {Target} WITH NO DATA";

    public string CreateSeen => $"CREATE TEMP TABLE {SeenName} ON COMMIT DROP AS SELECT {KeyList} FROM {Target} WITH NO DATA";

    public string CopyIntoSeen => $"COPY {SeenName} ({KeyList}) FROM STDIN (FORMAT BINARY)";

    /// <summary>
    /// Exports this source's keys with their row hashes (a table without the hash column: the keys alone), at most one
    /// row past <paramref name="maxRows"/>: a reader that fills its index reads the export to its end instead of
    /// cancelling it (a cancel that reaches the server after the export ended would abort the next statement).
    /// </summary>
    public string ExportKeyHashes(int maxRows) => $"COPY (SELECT {KeyList}{(HasHash ? ", " + QuotedHash : string.Empty)} FROM {Target}{(SourceFilter.Length == 0 ? string.Empty : " WHERE " + SourceFilter)} LIMIT {((long)maxRows + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)}) TO STDOUT (FORMAT BINARY)";

    /// <summary>Updates the staged rows whose hash differs; affected rows = updated.</summary>
    public string UpdateFromStage
    {
        get
        {
            var sets = ValueFields.Select(f => $"{f.Column.Quoted} = s.{f.Column.Quoted}").Append($"{QuotedHash} = s.{QuotedHash}");
            return $"UPDATE {Target} AS t SET {string.Join(", ", sets)} FROM {StageName} AS s WHERE {KeyJoin("t", "s")} AND t.{QuotedHash} IS DISTINCT FROM s.{QuotedHash}";
        }
    }

    /// <summary>Inserts the staged rows whose key is not in the table; affected rows = created.</summary>
    public string InsertMissingFromStage =>
        $"INSERT INTO {Target} ({ColumnList}) SELECT {ColumnList} FROM {StageName} AS s WHERE NOT EXISTS (SELECT 1 FROM {Target} AS t WHERE {KeyJoin("t", "s")})";

    /// <summary>Upserts staged rows into a table without a hash column, comparing every value; returns one row per written row, <c>true</c> when created.</summary>
    public string UpsertFromStage
    {
        get
        {
            var sb = new StringBuilder($"INSERT INTO {Target} AS t ({ColumnList}) SELECT {ColumnList} FROM {StageName} ON CONFLICT ({KeyList}) ");
            if (ValueFields.Length == 0)
            {
                return sb.Append("DO NOTHING RETURNING true").ToString();
            }

            static string Cmp(string alias, PgColumn c) => c.Kind == PgKind.Json ? $"{alias}.{c.Quoted}::text" : $"{alias}.{c.Quoted}";
            sb.Append("DO UPDATE SET ").AppendJoin(", ", ValueFields.Select(f => $"{f.Column.Quoted} = EXCLUDED.{f.Column.Quoted}"));
            sb.Append(" WHERE (").AppendJoin(", ", ValueFields.Select(f => Cmp("t", f.Column))).Append(", NULL) IS DISTINCT FROM (")
              .AppendJoin(", ", ValueFields.Select(f => Cmp("EXCLUDED", f.Column))).Append(", NULL)");
            return sb.Append(" RETURNING (xmax = 0)").ToString();
        }
    }

    /// <summary>Deletes this source's rows whose key was not seen in the run (replace mode).</summary>
    public string DeleteUnseen =>
        $"DELETE FROM {Target} AS t WHERE {(SourceFilter.Length == 0 ? string.Empty : SourceFilter.Replace("\"source\"", "t.\"source\"", StringComparison.Ordinal) + " AND ")}NOT EXISTS (SELECT 1 FROM {SeenName} AS s WHERE {KeyJoin("t", "s")})";

    /// <summary>The default table of a source: its name in snake_case, with '-' and '.' as '_'.</summary>
    public static string DefaultTableName(string sourceName) =>
        RecordSchema.ToSnakeCase(sourceName).Replace('-', '_').Replace('.', '_');

    /// <summary>The quoted target table of a run and its display name; fails naming the setting when the name is unusable.</summary>
    /// <param name="run">The run.</param>
    /// <param name="defaultSchema">The schema of tables whose source names none.</param>
    /// <returns>The quoted name and the display name.</returns>
    public static (string Target, string Display) ResolveTarget(SinkRun run, string defaultSchema)
    {
        var source = run.SourceName;
        var options = run.Options;
        var tableSchema = options.Schema ?? defaultSchema;
        var tableName = options.Table ?? DefaultTableName(source);
        if (options.Table is not null && options.Schema is null && tableName.Contains('.', StringComparison.Ordinal))
        {
            // "reporting.readings" would otherwise become one quoted name with a dot in it, in the default schema.
            var dot = tableName.IndexOf('.', StringComparison.Ordinal);
            throw new IngestionException($"Source '{source}': Ingestion:Sources:{source}:Table '{tableName}' contains a '.'; the table name is never split: set Ingestion:Sources:{source}:Schema to '{tableName[..dot]}' and Table to '{tableName[(dot + 1)..]}'.")
            {
                SourceName = source,
                Field = "Table",
            };
        }

        try
        {
            return (PgIdentifier.Quote(tableSchema, $"Ingestion:Sources:{source}:Schema") + "." + PgIdentifier.Quote(tableName, $"Ingestion:Sources:{source}:Table"), $"{tableSchema}.{tableName}");
        }
        catch (ArgumentException e)
        {
            throw new IngestionException($"Source '{source}': {e.Message}", e) { SourceName = source };
        }
    }

    /// <summary>
    /// Reads the target table (creating it when allowed), checks every record column against it (adding
    /// missing ones under <see cref="SchemaEvolution.Evolve"/>), and builds the mapping. Fails before any
    /// row is written, naming the source and the column.
    /// </summary>
    public static async Task<TableMapping<TRecord>> PrepareAsync(
        NpgsqlConnection conn, NpgsqlTransaction? tx, SinkRun run, RecordSchema schema, string defaultSchema, PostgresSinkOptions sinkOptions, int id, bool deferKey, CancellationToken cancellationToken)
    {
        var source = run.SourceName;
        var options = run.Options;
        var (target, display) = ResolveTarget(run, defaultSchema);
        var quotedNames = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in schema.Columns)
        {
            if (PgIdentifier.Problem(c.Name, $"Column name of source '{source}'") is { } problem)
            {
                throw new IngestionException($"Source '{source}': {problem}") { SourceName = source, Field = c.Name };
            }

            quotedNames[c.Name] = PgIdentifier.Quote(c.Name);
        }

        var keyNames = options.KeyColumns.Count > 0 ? options.KeyColumns.ToList() : schema.KeyColumns.Select(k => k.Name).ToList();
        foreach (var k in keyNames.Where(k => schema.IndexOf(k) < 0))
        {
            throw new IngestionException($"Source '{source}': key column '{k}' (Ingestion:Sources:{source}:KeyColumns) is not a column of the records.") { SourceName = source, Field = k };
        }

        var columns = await ReadColumnsAsync(conn, tx, target, cancellationToken).ConfigureAwait(false);
        if (columns is null)
        {
            if (!options.CreateTable)
            {
                throw new IngestionException($"Source '{source}': target table {display} does not exist. Create it, or set Ingestion:Sources:{source}:CreateTable to true.") { SourceName = source };
            }

            if (schema.Columns.Any(c => c.Type == ColumnType.Geometry) && !await HasPostGisAsync(conn, tx, cancellationToken).ConfigureAwait(false))
            {
                var g = schema.Columns.First(c => c.Type == ColumnType.Geometry).Name;
                throw new IngestionException($"Source '{source}': column '{g}' is a geometry, but the PostGIS extension is not installed in the database (CREATE EXTENSION postgis).") { SourceName = source, Field = g };
            }

            // A Merge source's first load fills the table before its key index is built (see
            // PostgresSinkOptions.BuildKeyIndexAfterFirstLoad); the writer adds the primary key later.
            var primaryKey = deferKey ? string.Empty : $", PRIMARY KEY ({string.Join(", ", keyNames.Select(k => quotedNames[k]))})";
            var defs = schema.Columns.Select(c => $"{quotedNames[c.Name]} {PgColumn.SqlTypeFor(c)}{(keyNames.Contains(c.Name) || !c.IsNullable ? " NOT NULL" : string.Empty)}")
                .Append($"{QuotedHash} bigint");
            var ddl = $"CREATE TABLE IF NOT EXISTS {target} ({string.Join(", ", defs)}{primaryKey}) WITH (fillfactor = {sinkOptions.CreatedTableFillFactor.ToString(CultureInfo.InvariantCulture)})";
            await ExecuteAsync(conn, tx, ddl, cancellationToken).ConfigureAwait(false);
            if (deferKey)
            {
                // The key to build is written on the library's own column, so a later run that reads no record (and so
                // knows no schema) can still check or build it.
                await ExecuteAsync(conn, tx, new PendingKey(keyNames, MayHoldRepeats: false).CommentOn(target), cancellationToken).ConfigureAwait(false);
            }

            columns = await ReadColumnsAsync(conn, tx, target, cancellationToken).ConfigureAwait(false)
                ?? throw new IngestionException($"Source '{source}': table {display} could not be created.") { SourceName = source };
        }

        var missing = schema.Columns.Where(c => !columns.ContainsKey(c.Name)).ToList();
        if (missing.Count > 0)
        {
            if (options.SchemaEvolution == SchemaEvolution.Freeze)
            {
                throw new IngestionException($"Source '{source}': the records have column '{missing[0].Name}' ({missing[0].Type}), which table {display} lacks{(missing.Count > 1 ? $" (and {missing.Count - 1} more: {string.Join(", ", missing.Skip(1).Select(m => m.Name))})" : string.Empty)}. Add it to the table, or set Ingestion:Sources:{source}:SchemaEvolution to Evolve.")
                {
                    SourceName = source,
                    Field = missing[0].Name,
                };
            }

            foreach (var m in missing)
            {
                if (m.Type == ColumnType.Geometry && !await HasPostGisAsync(conn, tx, cancellationToken).ConfigureAwait(false))
                {
                    throw new IngestionException($"Source '{source}': column '{m.Name}' is a geometry, but the PostGIS extension is not installed.") { SourceName = source, Field = m.Name };
                }

                await ExecuteAsync(conn, tx, $"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {quotedNames[m.Name]} {PgColumn.SqlTypeFor(m)}", cancellationToken).ConfigureAwait(false);
            }

            columns = (await ReadColumnsAsync(conn, tx, target, cancellationToken).ConfigureAwait(false))!;
        }

        var fields = new List<FieldAccessor<TRecord>>();
        foreach (var c in schema.Columns)
        {
            var info = columns[c.Name];
            if (info.Kind is not { } kind || !PgColumn.Compatible(c.Type, kind))
            {
                throw new IngestionException($"Source '{source}': column '{c.Name}' is {c.Type} in the records but {info.SqlType} in table {display}; no row was written. Change the column type or the source.")
                {
                    SourceName = source,
                    Field = c.Name,
                };
            }

            var pg = new PgColumn
            {
                Name = c.Name,
                Quoted = quotedNames[c.Name],
                Kind = kind,
                SqlType = info.SqlType,
                MaxLength = info.MaxLength,
                Precision = info.Precision,
                Scale = info.Scale,
                NotNull = info.NotNull,
            };
            fields.Add(c.IsSourceName ? new SourceNameAccessor<TRecord>(c, pg, source)
                : typeof(TRecord) == typeof(DynamicRecord) ? (FieldAccessor<TRecord>)(object)DynamicAccessors.Create(c, pg)
                : FieldAccessor<TRecord>.ForProperty(c, pg));
        }

        var required = columns.Values.Where(c => c.NotNull && !c.HasDefault && !c.Name.Equals(HashColumn, StringComparison.Ordinal) && schema.IndexOf(c.Name) < 0).ToList();
        if (required.Count > 0)
        {
            throw new IngestionException($"Source '{source}': table {display} has NOT NULL column '{required[0].Name}' without a default, which the records do not fill.") { SourceName = source, Field = required[0].Name };
        }

        var keyFields = keyNames.Select(k => fields[schema.IndexOf(k)]).ToArray();
        foreach (var k in keyFields.Where(k => k.Column.Kind == PgKind.Geometry))
        {
            throw new IngestionException($"Source '{source}': key column '{k.Column.Name}' is a geometry; keys must be plain values.") { SourceName = source, Field = k.Column.Name };
        }

        var hasUnique = await HasUniqueIndexAsync(conn, tx, target, keyNames, cancellationToken).ConfigureAwait(false);
        var hasHash = columns.TryGetValue(HashColumn, out var h) && h.Kind == PgKind.Int64;

        // A table the sink made without its key index yet (a first load still running or interrupted): the writer builds it.
        var keyIndexPending = !hasUnique && hasHash && !await HasPrimaryKeyAsync(conn, tx, target, cancellationToken).ConfigureAwait(false);
        var mayHoldRepeats = keyIndexPending && (await PendingKey.ReadAsync(conn, tx, target, cancellationToken).ConfigureAwait(false))?.MayHoldRepeats == true;
        if (!hasUnique && !keyIndexPending && options.WriteMode != WriteMode.Append)
        {
            throw new IngestionException($"Source '{source}': table {display} has no primary key or unique index on the key ({string.Join(", ", keyNames)}), which {options.WriteMode} mode needs.") { SourceName = source };
        }

        var sourceKey = keyFields.FirstOrDefault(k => k.Schema.IsSourceName);
        var entangled = await HasTriggersRulesOrForeignKeysAsync(conn, tx, target, cancellationToken).ConfigureAwait(false);
        return new TableMapping<TRecord>
        {
            HasTriggersRulesOrForeignKeys = entangled,
            Schema = schema,
            Target = target,
            DisplayName = display,
            Fields = fields.ToArray(),
            KeyFields = keyFields,
            ValueFields = fields.Where(f => !keyFields.Contains(f)).ToArray(),
            HasHash = hasHash,
            HasUniqueKey = hasUnique,
            KeyIndexPending = keyIndexPending,
            KeyMadeLater = keyIndexPending,
            MayHoldRepeats = mayHoldRepeats,
            SourceFilter = sourceKey is null ? string.Empty : $"{sourceKey.Column.Quoted} = {Literal(source)}",
            Id = id,
        };
    }

    /// <summary>How many key values are stored more than once in a table (a table without its primary key).</summary>
    public static async Task<long> DuplicatedKeysAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string target, IReadOnlyList<string> keyNames, CancellationToken cancellationToken)
    {
        var cols = string.Join(", ", keyNames.Select(k => PgIdentifier.Quote(k)));
        var cmd = new NpgsqlCommand($"SELECT count(*) FROM (SELECT 1 FROM {target} GROUP BY {cols} HAVING count(*) > 1) d", conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            return (long)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    /// <summary>A SQL string literal (standard-conforming); only for the validated source name in <c>COPY ... TO</c>, which takes no parameters.</summary>
    private static string Literal(string value)
    {
        if (value.Contains('\0', StringComparison.Ordinal) || value.Contains('\\', StringComparison.Ordinal))
        {
            throw new ArgumentException("The value cannot be a literal.", nameof(value));
        }

        return "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";
    }

    private sealed record TableColumn(string Name, PgKind? Kind, string SqlType, int MaxLength, int Precision, int Scale, bool NotNull, bool HasDefault);

    private static async Task<Dictionary<string, TableColumn>?> ReadColumnsAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string target, CancellationToken cancellationToken)
    {
        const string sql = """
            SELECT a.attname, COALESCE(bt.typname, t.typname), format_type(a.atttypid, a.atttypmod),
                   COALESCE(NULLIF(a.atttypmod, -1), t.typtypmod), a.attnotnull, a.atthasdef
            FROM pg_attribute a
            JOIN pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
            WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
            """;
        var cmd = new NpgsqlCommand(sql, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = target, NpgsqlDbType = NpgsqlDbType.Text });
            var result = new Dictionary<string, TableColumn>(StringComparer.Ordinal);
            var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var typeName = reader.GetString(1);
                    var typmod = reader.GetInt32(3);
                    var kind = PgColumn.KindOf(typeName);
                    int maxLength = 0, precision = 0, scale = 0;
                    if (typmod > 4 && typeName is "varchar" or "bpchar")
                    {
                        maxLength = typmod - 4;
                    }
                    else if (typmod >= 4 && typeName == "numeric")
                    {
                        precision = ((typmod - 4) >> 16) & 0xffff;
                        scale = (typmod - 4) & 0xffff;
                    }

                    var name = reader.GetString(0);
                    result[name] = new TableColumn(name, kind, reader.GetString(2), maxLength, precision, scale, reader.GetBoolean(4), reader.GetBoolean(5));
                }
            }

            if (result.Count > 0)
            {
                return result;
            }
        }

        var exists = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL", conn, tx);
        await using (exists.ConfigureAwait(false))
        {
            exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = target, NpgsqlDbType = NpgsqlDbType.Text });
            return (bool)(await exists.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))! ? [] : null;
        }
    }

    /// <summary>Whether the table has a primary key, on whatever columns.</summary>
    private static async Task<bool> HasPrimaryKeyAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string target, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = to_regclass($1) AND indisprimary)", conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = target, NpgsqlDbType = NpgsqlDbType.Text });
            return (bool)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    /// <summary>Whether the table has a primary key or a plain unique index on exactly the key columns.</summary>
    public static async Task<bool> HasUniqueIndexAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string target, IReadOnlyList<string> keyNames, CancellationToken cancellationToken)
    {
        const string sql = """
            SELECT EXISTS (
              SELECT 1 FROM pg_index i
              WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
                AND i.indnkeyatts = cardinality($2::text[])
                AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a
                     WHERE a.attrelid = i.indrelid AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1]))
                    = (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) AS k))
            """;
        var cmd = new NpgsqlCommand(sql, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = target, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = keyNames.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            return (bool)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    /// <summary>Whether a table has a trigger of its own (not one behind a constraint), a rule, or a foreign key from or to it.</summary>
    private static async Task<bool> HasTriggersRulesOrForeignKeysAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string target, CancellationToken cancellationToken)
    {
        const string sql = """
            SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal)
                OR EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = to_regclass($1) AND rulename <> '_RETURN')
                OR EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND (conrelid = to_regclass($1) OR confrelid = to_regclass($1)))
            """;
        var cmd = new NpgsqlCommand(sql, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = target, NpgsqlDbType = NpgsqlDbType.Text });
            return (bool)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    private static async Task<bool> HasPostGisAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'postgis')", conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            return (bool)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        }
    }

    /// <summary>Runs one statement on the connection (in the transaction when given); returns the rows it affected.</summary>
    public static async Task<int> ExecuteAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string sql, CancellationToken cancellationToken)
    {
        var cmd = new NpgsqlCommand(sql, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }
}
