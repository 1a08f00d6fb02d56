using Ingestion.Queue;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Queue;

/// <summary>Enqueue of one item, alone or in the caller's transaction.</summary>
public sealed partial class PostgresWorkQueue
{
    /// <inheritdoc />
    public async Task<bool> EnqueueAsync(string queue, WorkItemRequest item, CancellationToken cancellationToken)
    {
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        var conn = await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (conn.ConfigureAwait(false))
        {
            return await EnqueueCoreAsync(conn, null, queue, queueId, item, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Adds an item within the caller's transaction: it becomes visible (and workers are notified) only if the
    /// transaction commits, so a record and its follow-up work commit together.
    /// </summary>
    /// <param name="transaction">The caller's open transaction (on a connection to the library's database).</param>
    /// <param name="queue">The queue name.</param>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> when added; <see langword="false"/> when the key was already known.</returns>
    public async Task<bool> EnqueueAsync(NpgsqlTransaction transaction, string queue, WorkItemRequest item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        var conn = transaction.Connection ?? throw new ArgumentException("The transaction is already finished.", nameof(transaction));
        var queueId = await QueueIdAsync(queue, cancellationToken).ConfigureAwait(false);
        return await EnqueueCoreAsync(conn, transaction, queue, queueId, item, cancellationToken).ConfigureAwait(false);
    }

    private async Task<bool> EnqueueCoreAsync(NpgsqlConnection conn, NpgsqlTransaction? tx, string queue, int queueId, WorkItemRequest item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        CheckKey(item.Key, "item");
        var cmd = new NpgsqlCommand(_enqueueSql, conn, tx);
        await using (cmd.ConfigureAwait(false))
        {
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = queueId });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = item.Key, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter { Value = (object?)item.Payload ?? DBNull.Value, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<int> { TypedValue = item.Priority });
            cmd.Parameters.Add(new NpgsqlParameter { Value = item.NotBefore is { } nb ? nb.ToUniversalTime() : DBNull.Value, NpgsqlDbType = NpgsqlDbType.TimestampTz });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _channel, NpgsqlDbType = NpgsqlDbType.Text });
            cmd.Parameters.Add(new NpgsqlParameter<string> { TypedValue = queue, NpgsqlDbType = NpgsqlDbType.Text });
            await cmd.PrepareAsync(cancellationToken).ConfigureAwait(false);
            return (int)(await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))! > 0;
        }
    }
}
