using System.Text;
using Ingestion.Sinks;
using Npgsql;

namespace Ingestion.Postgres.Sinks;

/// <summary>
/// The verifying refresh (<see cref="SinkRun.Verify"/>): the stored row hash is not trusted. Every record of the batch is
/// staged and merged with one statement that compares each stored column value with the record's on the server, so a
/// row edited by hand (values changed, hash left as it was) is rewritten and counted as updated; rows whose values are
/// equal stay untouched and count as unchanged.
/// </summary>
internal sealed partial class PostgresSinkWriter<TRecord>
{
    private async Task VerifyRowsAsync(TableMapping<TRecord> mapping, SinkBatch<TRecord> batch, List<int> winners, ulong[] rowHashes, Counts counts, List<int> indexUpdates, CancellationToken cancellationToken)
    {
        if (mapping.KeyIndexPending)
        {
            // The merge below needs the table's key (ON CONFLICT).
            await BuildKeyIndexAsync(mapping, onSideConnection: false, counts, cancellationToken).ConfigureAwait(false);
        }

        var hashes = mapping.HasHash ? rowHashes : null;
        await StageAsync(mapping, batch, winners, hashes, cancellationToken).ConfigureAwait(false);
        await _tx!.SaveAsync(MergeSavepoint, cancellationToken).ConfigureAwait(false);
        long created, updated;
        try
        {
            var cmd = new NpgsqlCommand(VerifyingUpsert(mapping), _conn, _tx);
            await using (cmd.ConfigureAwait(false))
            {
                var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    _ = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                    (created, updated) = (reader.GetInt64(0), reader.GetInt64(1));
                }
            }
        }
        catch (PostgresException e) when (IsConstraintViolation(e))
        {
            throw await MergeViolationAsync(mapping, batch, winners, hashes, e, cancellationToken).ConfigureAwait(false);
        }

        counts.AddMerged(winners.Count, created, updated);
        indexUpdates.AddRange(winners);
    }

    /// <summary>
    /// <c>INSERT ... ON CONFLICT (key) DO UPDATE ... WHERE (stored values, stored hash) IS DISTINCT FROM (new ones)</c>,
    /// counting the rows it created and updated (one result row). JSON values compare as text (json has no equality).
    /// </summary>
    internal static string VerifyingUpsert(TableMapping<TRecord> mapping)
    {
        var hash = "\"" + TableMapping<TRecord>.HashColumn + "\"";
        var columns = mapping.Fields.Select(f => f.Column.Quoted).Concat(mapping.HasHash ? [hash] : []).ToList();
        var updated = mapping.ValueFields.Select(f => f.Column.Quoted).Concat(mapping.HasHash ? [hash] : []).ToList();
        var sb = new StringBuilder("WITH w AS (")
            .Append("INSERT INTO ").Append(mapping.Target).Append(" AS t (").AppendJoin(", ", columns).Append(") SELECT ").AppendJoin(", ", columns)
            .Append(" FROM ").Append(mapping.StageName).Append(" ON CONFLICT (").AppendJoin(", ", mapping.KeyFields.Select(f => f.Column.Quoted)).Append(") ");
        if (updated.Count == 0)
        {
            return sb.Append("DO NOTHING RETURNING true AS created").Append(Tally).ToString();
        }

        var compared = mapping.ValueFields.Select(f => (f.Column.Quoted, Json: f.Column.Kind == PgKind.Json)).Concat(mapping.HasHash ? [(hash, false)] : []).ToList();
        static string Cmp(string alias, (string Quoted, bool Json) c) => c.Json ? $"{alias}.{c.Quoted}::text" : $"{alias}.{c.Quoted}";
        return sb.Append("DO UPDATE SET ").AppendJoin(", ", updated.Select(c => $"{c} = EXCLUDED.{c}"))
            .Append(" WHERE (").AppendJoin(", ", compared.Select(c => Cmp("t", c))).Append(", NULL) IS DISTINCT FROM (")
            .AppendJoin(", ", compared.Select(c => Cmp("EXCLUDED", c))).Append(", NULL)")
            .Append(" RETURNING (xmax = 0) AS created").Append(Tally).ToString();
    }

    private const string Tally = ") SELECT count(*) FILTER (WHERE created), count(*) FILTER (WHERE NOT created) FROM w";
}
