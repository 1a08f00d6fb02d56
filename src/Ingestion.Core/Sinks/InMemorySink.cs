using System.Collections.Concurrent;
using System.Globalization;
using Ingestion.Stores;

namespace Ingestion.Sinks;

/// <summary>
/// A sink that keeps tables in process memory: exact created/updated/unchanged/duplicate counts,
/// null-key rejection, per-batch or whole-run commits, dry-run, replace mode, and checkpoint state
/// saved with each committed batch. For hosts without a database, examples and tests of the runner.
/// </summary>
public sealed class InMemorySink : IIngestionSink
{
    private readonly ConcurrentDictionary<string, Dictionary<string, object?[]>> _tables = new(StringComparer.Ordinal);
    private readonly ISourceStateStore _states;

    /// <summary>Creates the sink.</summary>
    /// <param name="states">Where committed checkpoint state is saved.</param>
    public InMemorySink(ISourceStateStore states)
    {
        ArgumentNullException.ThrowIfNull(states);
        _states = states;
    }

    /// <summary>The committed rows of a table, keyed by their formatted key.</summary>
    /// <param name="table">The table name (the source's <see cref="SourceOptions.Table"/>, or the source name).</param>
    /// <returns>A copy of the rows.</returns>
    public IReadOnlyDictionary<string, object?[]> GetTable(string table)
    {
        if (!_tables.TryGetValue(table, out var rows))
        {
            return new Dictionary<string, object?[]>();
        }

        lock (rows)
        {
            return new Dictionary<string, object?[]>(rows);
        }
    }

    /// <inheritdoc />
    public ValueTask<ISinkWriter<TRecord>> OpenAsync<TRecord>(SinkRun run, CancellationToken cancellationToken)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(run);
        var table = _tables.GetOrAdd(run.Options.Table ?? run.SourceName, _ => new Dictionary<string, object?[]>(StringComparer.Ordinal));
        return ValueTask.FromResult<ISinkWriter<TRecord>>(new Writer<TRecord>(this, run, table));
    }

    private sealed class Writer<TRecord>(InMemorySink owner, SinkRun run, Dictionary<string, object?[]> table) : ISinkWriter<TRecord>
        where TRecord : class
    {
        private readonly RecordValues<TRecord> _values = new(run.Schema);
        private readonly Dictionary<string, object?[]> _pending = new(StringComparer.Ordinal);
        private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
        private SourceState? _pendingState;

        private bool Deferred => run.IsDryRun || run.Options.Transaction == TransactionScope.WholeRun || run.Options.WriteMode == WriteMode.Replace;

        public async ValueTask<SinkBatchResult> WriteBatchAsync(SinkBatch<TRecord> batch, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(batch);
            cancellationToken.ThrowIfCancellationRequested();
            var rejected = new List<RejectedRecord>();
            var lastIndexOfKey = new Dictionary<string, int>(StringComparer.Ordinal);
            var keys = new string?[batch.Records.Count];
            for (var i = 0; i < batch.Records.Count; i++)
            {
                var record = batch.Records[i];
                var schema = _values.SchemaOf(record);
                var nullKey = schema.KeyColumns.FirstOrDefault(k => _values.Get(record, k, run.SourceName) is null);
                if (nullKey is not null)
                {
                    rejected.Add(new RejectedRecord(batch.PositionOf(i), nullKey.Name, $"Key column '{nullKey.Name}' is null."));
                    continue;
                }

                keys[i] = string.Join('\u001f', schema.KeyColumns.Select(k => Convert.ToString(_values.Get(record, k, run.SourceName), CultureInfo.InvariantCulture)));
                lastIndexOfKey[keys[i]!] = i;
            }

            if (rejected.Count > batch.RejectBudget)
            {
                throw new RejectBudgetExceededException($"Source '{run.SourceName}': {rejected.Count} records of the batch were rejected, more than the {batch.RejectBudget} the error budget has left; first: {rejected[0].Position}, field {rejected[0].Field}: {rejected[0].Reason}")
                {
                    SourceName = run.SourceName,
                    Position = rejected[0].Position,
                    Field = rejected[0].Field,
                    Rejected = rejected,
                };
            }

            long created = 0, updated = 0, unchanged = 0, duplicates = 0;
            var changes = new Dictionary<string, object?[]>(StringComparer.Ordinal);
            lock (table)
            {
                for (var i = 0; i < batch.Records.Count; i++)
                {
                    if (keys[i] is not { } key)
                    {
                        continue;
                    }

                    if (lastIndexOfKey[key] != i)
                    {
                        duplicates++;
                        continue;
                    }

                    var record = batch.Records[i];
                    var row = _values.SchemaOf(record).Columns.Select(c => _values.Get(record, c, run.SourceName)).ToArray();
                    var existing = _pending.TryGetValue(key, out var p) ? p
                        : run.Options.WriteMode == WriteMode.Replace && !_seen.Contains(key) ? null
                        : table.TryGetValue(key, out var t) ? t : null;
                    _seen.Add(key);
                    if (existing is null)
                    {
                        created++;
                    }
                    else if (run.Options.WriteMode == WriteMode.Append)
                    {
                        throw new IngestionException($"Source '{run.SourceName}': append of an existing key ({key.Replace('\u001f', ',')}) at {batch.PositionOf(i)} violates the table's key.")
                        {
                            SourceName = run.SourceName,
                            Position = batch.PositionOf(i),
                        };
                    }
                    else if (existing.SequenceEqual(row))
                    {
                        unchanged++;
                    }
                    else
                    {
                        updated++;
                    }

                    changes[key] = row;
                }

                foreach (var (k, v) in changes)
                {
                    _pending[k] = v;
                }

                if (batch.State is { } state)
                {
                    _pendingState = state;
                }

                if (!Deferred)
                {
                    Apply(replace: false);
                }
            }

            if (!Deferred)
            {
                await SaveStateAsync(cancellationToken).ConfigureAwait(false);
            }

            return new SinkBatchResult { Created = created, Updated = updated, Unchanged = unchanged, Duplicates = duplicates, Rejected = rejected };
        }

        public async ValueTask<SinkCompletion> CompleteAsync(CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (run.IsDryRun)
            {
                var wouldDelete = run.Options.WriteMode == WriteMode.Replace ? table.Keys.Count(k => !_seen.Contains(k)) : 0;
                return new SinkCompletion { Deleted = wouldDelete };
            }

            long deleted;
            lock (table)
            {
                deleted = Apply(replace: run.Options.WriteMode == WriteMode.Replace);
            }

            await SaveStateAsync(cancellationToken).ConfigureAwait(false);
            return new SinkCompletion { Deleted = deleted };
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;

        private long Apply(bool replace)
        {
            long deleted = 0;
            if (replace)
            {
                deleted = table.Keys.Count(k => !_pending.ContainsKey(k));
                table.Clear();
            }

            foreach (var (k, v) in _pending)
            {
                table[k] = v;
            }

            _pending.Clear();
            return deleted;
        }

        private async ValueTask SaveStateAsync(CancellationToken cancellationToken)
        {
            if (_pendingState is { } state)
            {
                _pendingState = null;
                await owner._states.SaveAsync(run.SourceName, state, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
