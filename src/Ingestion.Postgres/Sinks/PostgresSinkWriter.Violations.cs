using System.Diagnostics;
using System.Globalization;
using Ingestion.Postgres.Sql;
using Ingestion.Postgres.Stores;
using Ingestion.Sinks;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;

namespace Ingestion.Postgres.Sinks;

/// <summary>Errors of the server named for the user: the row that broke a constraint, the value a COPY refused.</summary>
internal sealed partial class PostgresSinkWriter<TRecord>
{
    private static bool IsConstraintViolation(PostgresException e) => e.SqlState.StartsWith("23", StringComparison.Ordinal);

    /// <summary>The 0-based row of a failed <c>COPY FROM</c>, from the error context (<c>COPY t, line 3</c>), or <see langword="null"/>.</summary>
    /// <summary>The column named in a COPY error's context (<c>COPY t, line 2, column location: ...</c>), or <see langword="null"/>.</summary>
    private static string? CopyColumn(PostgresException e)
    {
        const string marker = ", column ";
        var where = e.Where;
        var at = where?.IndexOf(marker, StringComparison.Ordinal) ?? -1;
        if (where is null || at < 0)
        {
            return e.ColumnName;
        }

        var rest = where[(at + marker.Length)..];
        var end = rest.IndexOf(':', StringComparison.Ordinal);
        return (end < 0 ? rest : rest[..end]).Trim();
    }

    private static int? CopyLine(PostgresException e, int rows)
    {
        const string marker = ", line ";
        var where = e.Where;
        var at = where?.IndexOf(marker, StringComparison.Ordinal) ?? -1;
        if (where is null || at < 0 || !where.StartsWith("COPY ", StringComparison.Ordinal))
        {
            return null;
        }

        var digits = where.AsSpan(at + marker.Length);
        var end = 0;
        while (end < digits.Length && char.IsAsciiDigit(digits[end]))
        {
            end++;
        }

        return int.TryParse(digits[..end], NumberStyles.None, CultureInfo.InvariantCulture, out var line) && line >= 1 && line <= rows ? line - 1 : null;
    }

    /// <summary>
    /// A merge statement broke a constraint of the table, which does not say which row: the merge is undone, and
    /// the staged rows are merged again in halves (each half kept when it passes) until one row is left that fails.
    /// Only on this error path; the batch fails either way, and the search is undone (back to before the merge).
    /// </summary>
    private async Task<IngestionException> MergeViolationAsync(TableMapping<TRecord> mapping, SinkBatch<TRecord> batch, List<int> rows, ulong[]? rowHashes, PostgresException error, CancellationToken cancellationToken)
    {
        int? culprit = null;
        try
        {
            await _tx!.RollbackAsync(MergeSavepoint, cancellationToken).ConfigureAwait(false);
            var part = rows;
            while (part.Count > 1 && culprit is null)
            {
                var half = part.Count / 2;
                List<int>? failing = null;
                foreach (var candidate in new[] { part.GetRange(0, half), part.GetRange(half, part.Count - half) })
                {
                    if (!await MergePassesAsync(mapping, batch, candidate, rowHashes, cancellationToken).ConfigureAwait(false))
                    {
                        failing = candidate;
                        break;
                    }
                }

                if (failing is null)
                {
                    break;
                }

                part = failing;
                if (part.Count == 1)
                {
                    culprit = part[0];
                }
            }

            if (rows.Count == 1)
            {
                culprit = rows[0];
            }

            await _tx.RollbackAsync(MergeSavepoint, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException)
        {
            LogViolationSearchFailed(_logger, e, Source);
        }

        return culprit is { } i
            ? Violation(mapping, batch, i, error, string.Empty)
            : new IngestionException($"Source '{Source}': the batch starting at {batch.PositionOf(0)} violates constraint {error.ConstraintName} of table {mapping.DisplayName}: {error.MessageText}", error)
            {
                SourceName = Source,
                Position = batch.PositionOf(0),
                Field = error.ColumnName,
            };
    }

    /// <summary>Stages <paramref name="rows"/> and merges them under a savepoint: kept when they pass, undone when they break a constraint.</summary>
    private async Task<bool> MergePassesAsync(TableMapping<TRecord> mapping, SinkBatch<TRecord> batch, List<int> rows, ulong[]? rowHashes, CancellationToken cancellationToken)
    {
        await _tx!.SaveAsync(MergePartSavepoint, cancellationToken).ConfigureAwait(false);
        try
        {
            await StageAsync(mapping, batch, rows, rowHashes, cancellationToken).ConfigureAwait(false);
            if (mapping.HasHash)
            {
                await ExecuteAsync(mapping.UpdateFromStage, cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(mapping.InsertMissingFromStage, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await ExecuteAsync(mapping.UpsertFromStage, cancellationToken).ConfigureAwait(false);
            }

            await _tx.ReleaseAsync(MergePartSavepoint, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (PostgresException e) when (IsConstraintViolation(e))
        {
            await _tx.RollbackAsync(MergePartSavepoint, cancellationToken).ConfigureAwait(false);
            await _tx.ReleaseAsync(MergePartSavepoint, cancellationToken).ConfigureAwait(false);
            return false;
        }
    }

    private IngestionException Violation(TableMapping<TRecord> mapping, SinkBatch<TRecord> batch, int row, PostgresException e, string advice)
    {
        var record = batch.Records[row];
        var key = KeyText(mapping, record);
        var what = e.ConstraintName is { Length: > 0 } c ? $"constraint {c}" : "a constraint";
        return new IngestionException($"Source '{Source}': {batch.PositionOf(row)} (key {key}) violates {what} of table {mapping.DisplayName}: {e.MessageText}.{advice}", e)
        {
            SourceName = Source,
            Position = batch.PositionOf(row),
            Field = e.ColumnName,
        };
    }

    /// <summary>
    /// A record's key as errors show it: <c>id='b'</c>, columns joined by commas; for a record released once its row was
    /// encoded (<see cref="RecordRelease"/>), which only its position names, a note saying so.
    /// </summary>
    private string KeyText(TableMapping<TRecord> mapping, TRecord? record) =>
        record is null
            ? "not kept: the record was released once its row was encoded"
            : string.Join(", ", mapping.KeyFields.Select(f => $"{f.Column.Name}={KeyValue(f, record)}"));

    private string KeyValue(FieldAccessor<TRecord> field, TRecord record)
    {
        var value = field.Schema.IsSourceName ? Source
            : record is DynamicRecord d ? d[field.Schema.Ordinal]
            : field.Schema.Property?.GetValue(record);
        return value switch
        {
            null => "null",
            string s => $"'{(s.Length > 100 ? s[..(char.IsHighSurrogate(s[99]) ? 99 : 100)] + "..." : s)}'",
            IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
            _ => value.ToString() ?? string.Empty,
        };
    }

    /// <summary>A value the table refused during a COPY: the whole COPY failed; <see cref="Row"/> names the record.</summary>
    private sealed class RefusedValueException(string message, Exception inner) : IngestionException(message, inner)
    {
        /// <summary>The record's index in its batch.</summary>
        public required int Row { get; init; }

        /// <summary>The refused value as text (the record's key when the column is not known).</summary>
        public required string RawValue { get; init; }

        /// <summary>Why, for the rejected record.</summary>
        public required string Reason { get; init; }
    }
}
