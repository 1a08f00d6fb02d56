using System.Diagnostics;
using System.Globalization;
using Ingestion.Postgres.Sql;
using Ingestion.Sinks;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// The key index of tables made without their primary key: when it is built, and the check, at the end of every run,
/// that the target has its key (so a table left without it, or holding a key twice, is never reported a success).
/// </summary>
internal sealed partial class PostgresSinkWriter<TRecord>
{
    /// <summary>
    /// Whether a table without its key may be filled first: a Merge run committing batch by batch, with the key index on
    /// (a run-long transaction would hold the build's exclusive lock, or upgrade its own lock, until it ends).
    /// </summary>
    private bool CanDeferKeyIndex => _options.BuildKeyIndexAfterFirstLoad && Mode == WriteMode.Merge && _options.KeyIndexMaxRows > 0 && !_deferred;

    /// <summary>
    /// Before a run reports its end: every table it wrote that still lacks its key gets it now, and a run that wrote no
    /// table (nothing to read, not modified) checks its target all the same. A table that holds a key more than once
    /// fails the run, naming the table, the key and how many keys are duplicated.
    /// </summary>
    private async Task EnsureKeysAsync(CancellationToken cancellationToken)
    {
        if (_run.IsDryRun || Mode == WriteMode.Append)
        {
            return;
        }

        if (_mappings.Count == 0)
        {
            if (_run.Schema is { } typed)
            {
                _ = await MappingAsync(typed, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var (target, display) = TableMapping<TRecord>.ResolveTarget(_run, _defaultTargetSchema);
                if (await PendingKey.ReadAsync(_conn, _tx, target, cancellationToken).ConfigureAwait(false) is { } pendingKey)
                {
                    await BuildKeyAsync(target, display, pendingKey, onSideConnection: _tx is not null, batchCounts: null, cancellationToken).ConfigureAwait(false);
                }
            }
        }

        foreach (var pending in _mappings.Values.Where(m => m.KeyIndexPending).Distinct().ToList())
        {
            if (pending.KeyIndexPending)
            {
                await BuildKeyIndexAsync(pending, onSideConnection: false, batchCounts: null, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Builds the primary key of a table the sink made without it (<see cref="PostgresSinkOptions.BuildKeyIndexAfterFirstLoad"/>),
    /// in the open transaction or a short one of its own. The table is locked against other writers first (a lock that
    /// also queues a second builder), and a key another writer built meanwhile is taken as it is. Rows that a first load
    /// copied twice under one key are recounted into <paramref name="batchCounts"/> when built in a batch's transaction
    /// (they commit with it), else into the run's completion.
    /// </summary>
    private async Task BuildKeyIndexAsync(TableMapping<TRecord> mapping, bool onSideConnection, Counts? batchCounts, CancellationToken cancellationToken)
    {
        var keyNames = mapping.KeyFields.Select(k => k.Column.Name).ToList();
        var pendingKey = new PendingKey(keyNames, mapping.MayHoldRepeats);
        await BuildKeyAsync(mapping.Target, mapping.DisplayName, pendingKey, onSideConnection, batchCounts, cancellationToken).ConfigureAwait(false);
        foreach (var m in _mappings.Values.Where(m => m.Target == mapping.Target))
        {
            m.KeyIndexPending = false;
        }
    }

    /// <summary>Builds a table's primary key on <paramref name="pendingKey"/>'s columns unless a unique index on them exists (see <see cref="BuildKeyIndexAsync"/>).</summary>
    private async Task BuildKeyAsync(string target, string display, PendingKey pendingKey, bool onSideConnection, Counts? batchCounts, CancellationToken cancellationToken)
    {
        // The build locks the table: a copy ahead must not hold it meanwhile (the build would wait on it unseen), and
        // none may start until the build is done.
        using var blocked = await BlockCopyAheadAsync().ConfigureAwait(false);
        var keyNames = pendingKey.Columns;
        var addPrimaryKey = pendingKey.AddPrimaryKey(target, _options.CreatedTableFillFactor);
        var started = Stopwatch.GetTimestamp();
        var side = onSideConnection ? (NpgsqlConnection)((ICloneable)_conn).Clone() : null;
        var conn = side ?? _conn;
        var own = side is not null || _tx is null;
        var keyText = string.Join(", ", keyNames);
        NpgsqlTransaction? tx = null;
        try
        {
            if (side is not null)
            {
                await side.OpenAsync(cancellationToken).ConfigureAwait(false);
            }

            tx = own ? await conn.BeginTransactionAsync(cancellationToken).ConfigureAwait(false) : _tx!;
            if (own)
            {
                await CheckFenceAsync(conn, tx, cancellationToken).ConfigureAwait(false);
            }

            var built = false;
            if (!await TableMapping<TRecord>.HasUniqueIndexAsync(conn, tx, target, keyNames, cancellationToken).ConfigureAwait(false))
            {
                await TableMapping<TRecord>.ExecuteAsync(conn, tx, $"LOCK TABLE {target} IN SHARE ROW EXCLUSIVE MODE", cancellationToken).ConfigureAwait(false);
                if (!await TableMapping<TRecord>.HasUniqueIndexAsync(conn, tx, target, keyNames, cancellationToken).ConfigureAwait(false))
                {
                    await TableMapping<TRecord>.ExecuteAsync(conn, tx, $"SAVEPOINT ingestion_key_build", cancellationToken).ConfigureAwait(false);
                    try
                    {
                        await TableMapping<TRecord>.ExecuteAsync(conn, tx, addPrimaryKey, cancellationToken).ConfigureAwait(false);
                    }
                    catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
                    {
                        await tx.RollbackAsync("ingestion_key_build", cancellationToken).ConfigureAwait(false);
                        if (!pendingKey.MayHoldRepeats)
                        {
                            // Count the duplicated keys for the message (the table is still readable after the savepoint).
                            var duplicated = await TableMapping<TRecord>.DuplicatedKeysAsync(conn, tx, target, keyNames, cancellationToken).ConfigureAwait(false);
                            var detail = string.IsNullOrEmpty(e.Detail) || e.Detail.Contains("redacted", StringComparison.OrdinalIgnoreCase) ? string.Empty : $" (first: {e.Detail.TrimEnd('.')})";
                            throw new IngestionException($"Source '{Source}': table {display} holds {duplicated} key value(s) of ({keyText}) stored more than once, so its primary key cannot be built and the run is not a success{detail}. It was filled without its key and another writer added rows under keys it also holds; remove the duplicates (keep one row per key), then run again.", e)
                            {
                                SourceName = Source,
                                Field = keyNames[0],
                            };
                        }

                        // A first load copied keys it no longer remembered: keep the newest row of each repeated key
                        // (the table is locked against other writers), then build the key.
                        var (asUpdated, asUnchanged) = await pendingKey.ResolveRepeatsAsync(conn, tx, target, cancellationToken).ConfigureAwait(false);
                        LogRepeatsResolved(_logger, Source, display, asUpdated + asUnchanged);
                        await TableMapping<TRecord>.ExecuteAsync(conn, tx, addPrimaryKey, cancellationToken).ConfigureAwait(false);

                        // Repeats an earlier run copied (and stopped before building the key) were counted by its job:
                        // only this run's own copies are recounted.
                        if (_copiedForgottenKeys)
                        {
                            (batchCounts ?? _recounted).Recount(asUpdated, asUnchanged);
                        }
                    }

                    built = true;
                }
            }

            if (own)
            {
                await tx.CommitAsync(cancellationToken).ConfigureAwait(false);
            }

            if (built)
            {
                LogKeyIndexBuilt(_logger, Source, display, keyText, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
        catch (PostgresException e) when (!IsTransientError(e))
        {
            // A null in a key column, a key built on other columns meanwhile, ...: name the table and the key.
            throw new IngestionException($"Source '{Source}': the primary key ({keyText}) of table {display} cannot be built: {e.MessageText}.", e)
            {
                SourceName = Source,
                Field = keyNames[0],
            };
        }
        finally
        {
            if (own && tx is not null)
            {
                await tx.DisposeAsync().ConfigureAwait(false);
            }

            if (side is not null)
            {
                await side.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Before a first load writes on <paramref name="conn"/> (outside a transaction, so a rollback cannot undo it): asks
    /// its session to have the pages it writes flushed as it goes (<see cref="PostgresSinkOptions.FirstLoadFlushAfterKilobytes"/>),
    /// once per connection. The setting lasts until the connection goes back to the pool, which resets it.
    /// </summary>
    private async Task TuneFirstLoadSessionAsync(NpgsqlConnection conn, TableMapping<TRecord> mapping, CancellationToken cancellationToken)
    {
        if (_options.FirstLoadFlushAfterKilobytes <= 0 || !IsFirstLoadInto(mapping))
        {
            return;
        }

        lock (_tunedSessions)
        {
            if (!_tunedSessions.Add(conn))
            {
                return;
            }
        }

        var cmd = new NpgsqlCommand("SELECT set_config('backend_flush_after', $1, false)", conn);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.AddWithValue(_options.FirstLoadFlushAfterKilobytes.ToString(CultureInfo.InvariantCulture) + "kB");
            await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    [LoggerMessage(3020, LogLevel.Information, "Source {SourceName}: {Rows} older row(s) of keys copied twice by a first load past its key index were removed from {Table} before building its key")]
    private static partial void LogRepeatsResolved(ILogger logger, string sourceName, string table, long rows);

    private static bool IsTransientError(PostgresException e) => e.IsTransient || e.SqlState == PostgresErrorCodes.DeadlockDetected;
}
