using System.Globalization;
using Npgsql;

namespace Ingestion.Postgres.Dedup;

/// <summary>Tells a dedup statement that timed out from other failures, and says which one and why.</summary>
internal static class DedupTimeouts
{
    /// <summary>Whether an exception is a statement timeout: Npgsql's command timeout, or the server's <c>statement_timeout</c> (57014 without the caller cancelling).</summary>
    internal static bool IsTimeout(Exception e, CancellationToken cancellationToken) => e switch
    {
        NpgsqlException { InnerException: TimeoutException } => true,
        PostgresException { SqlState: PostgresErrorCodes.QueryCanceled } => !cancellationToken.IsCancellationRequested,
        _ => false,
    };

    /// <summary>
    /// The error to raise instead: an <see cref="IngestionException"/> without the timeout as its inner exception (its
    /// text is in the message), so the runner does not retry the same statement as a transient failure.
    /// </summary>
    internal static IngestionException Describe(Exception e, string recordType, string step)
    {
        var limit = e is PostgresException ? "the server's statement_timeout" : "the connection's Command Timeout";
        return new IngestionException(string.Create(CultureInfo.InvariantCulture, $"""
            Dedup of '{recordType}': {step} timed out ({limit}; {e.GetType().Name}: {e.Message}). It is not retried as-is: the same statement would time out again. Usual causes: a block shared by very many records (check DedupBatchResult.CutBlocks), a lock held by another session, or a limit too short for the batch size; raise the limit or lower the source's BatchSize.
            """));
    }
}
