namespace Ingestion;

/// <summary>
/// The non-generic view of a source: what the runtime needs to know before it reads.
/// Implement <see cref="IIngestionSource{TRecord}"/> instead of this interface.
/// </summary>
/// <remarks>
/// A source is registered under a name (<see cref="IIngestionBuilder.AddSource{TSource}(string, Action{SourceOptions}?)"/>);
/// the same class can be registered several times under different names with different options.
/// The name of the current run is <see cref="IngestionContext.SourceName"/>.
/// </remarks>
public interface IIngestionSource
{
    /// <summary>The CLR type of the records this source yields.</summary>
    Type RecordType { get; }
}

/// <summary>
/// A source of records: pulls data from the outside world and streams it to the runtime.
/// Sources never write to the database; they yield records, report rejected input through
/// <see cref="IngestionContext.Reject(RejectedRecord)"/> and mark resumable positions with
/// <see cref="IngestionContext.Checkpoint(SourceCheckpoint)"/>.
/// </summary>
/// <typeparam name="TRecord">
/// A class with a declared key (see <see cref="RecordKeyAttribute"/>) or <see cref="DynamicRecord"/>
/// for sources whose columns come from the data.
/// </typeparam>
public interface IIngestionSource<TRecord> : IIngestionSource
    where TRecord : class
{
    /// <summary>
    /// Streams the source's records. The sequence is consumed once, in order; a checkpoint
    /// reported between two records covers every record yielded before it.
    /// </summary>
    /// <param name="context">The run: mode, saved state, limits, logger and the reject/checkpoint callbacks.</param>
    /// <param name="cancellationToken">Cancelled on timeout or shutdown; stop promptly when it fires.</param>
    /// <returns>The records, streamed; never buffer the whole source.</returns>
    IAsyncEnumerable<TRecord> ReadAsync(IngestionContext context, CancellationToken cancellationToken);
}

/// <summary>
/// A convenience base class for sources: supplies <see cref="RecordType"/>.
/// </summary>
/// <typeparam name="TRecord">The record type.</typeparam>
public abstract class IngestionSource<TRecord> : IIngestionSource<TRecord>
    where TRecord : class
{
    /// <inheritdoc />
    public Type RecordType => typeof(TRecord);

    /// <inheritdoc />
    public abstract IAsyncEnumerable<TRecord> ReadAsync(IngestionContext context, CancellationToken cancellationToken);
}
