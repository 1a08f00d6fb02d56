using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.Http;

/// <summary>
/// A base class for sources that read over the shared HTTP layer (retries, circuit breaker, conditional fetch,
/// request budgets, size caps, redaction). It takes the HTTP layer and the named options from the container,
/// and for each run resolves the options by <see cref="IngestionContext.SourceName"/>, creates the run's
/// <see cref="SourceHttpClient"/> and hands both to <see cref="ReadAsync(IngestionContext, TOptions, SourceHttpClient, CancellationToken)"/>.
/// All the built-in sources derive from it; so can a plug-in's own HTTP source (register it with
/// <see cref="HttpSourceBuilderExtensions.AddHttpSource{TSource, TOptions}"/>).
/// </summary>
/// <typeparam name="TOptions">The source's options, bound from <c>Ingestion:Sources:&lt;name&gt;</c> as named options.</typeparam>
/// <typeparam name="TRecord">The record type.</typeparam>
/// <example>
/// <code>
/// public sealed class PermitSource(ISourceHttpClientFactory http, IOptionsMonitor&lt;PermitOptions&gt; options)
///     : HttpSourceBase&lt;PermitOptions, Permit&gt;(http, options)
/// {
///     protected override async IAsyncEnumerable&lt;Permit&gt; ReadAsync(IngestionContext context, PermitOptions options,
///         SourceHttpClient http, [EnumeratorCancellation] CancellationToken cancellationToken)
///     {
///         await using var response = await http.GetAsync(new Uri(options.Url!), cancellationToken).ConfigureAwait(false);
///         // parse the body and yield the records
///     }
/// }
/// </code>
/// </example>
public abstract class HttpSourceBase<TOptions, TRecord> : IngestionSource<TRecord>
    where TOptions : class, IHttpSourceOptions
    where TRecord : class
{
    /// <summary>Creates the source.</summary>
    /// <param name="http">The HTTP layer (<see cref="SourceHttpServiceCollectionExtensions.AddSourceHttp(IIngestionBuilder)"/>).</param>
    /// <param name="options">The options, named by source.</param>
    protected HttpSourceBase(ISourceHttpClientFactory http, IOptionsMonitor<TOptions> options)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(options);
        HttpClients = http;
        Options = options;
    }

    /// <summary>The HTTP layer, which creates the client of each run.</summary>
    protected ISourceHttpClientFactory HttpClients { get; }

    /// <summary>The options of every source of this class, named by source.</summary>
    protected IOptionsMonitor<TOptions> Options { get; }

    /// <summary>
    /// Streams the run's records: resolves the options of <see cref="IngestionContext.SourceName"/>, creates
    /// the run's HTTP client (<see cref="CreateHttpClient"/>) and reads with
    /// <see cref="ReadAsync(IngestionContext, TOptions, SourceHttpClient, CancellationToken)"/>. Nothing
    /// happens until the sequence is enumerated.
    /// </summary>
    /// <param name="context">The run.</param>
    /// <param name="cancellationToken">Cancelled on timeout or shutdown.</param>
    /// <returns>The records, streamed.</returns>
    public sealed override async IAsyncEnumerable<TRecord> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var options = Options.Get(context.SourceName);
        var http = CreateHttpClient(context, options);
        await foreach (var record in ReadAsync(context, options, http, cancellationToken).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            yield return record;
        }
    }

    /// <summary>
    /// Creates the HTTP client of a run from the options' <see cref="IHttpSourceOptions.Http"/> settings. Override
    /// it to adjust the context the client sees (e.g. to fetch unconditionally), then call the base.
    /// </summary>
    /// <param name="context">The run.</param>
    /// <param name="options">The run's options.</param>
    /// <returns>The client.</returns>
    protected virtual SourceHttpClient CreateHttpClient(IngestionContext context, TOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return HttpClients.Create(context, options.Http);
    }

    /// <summary>Reads the run's records.</summary>
    /// <param name="context">The run.</param>
    /// <param name="options">The options of <see cref="IngestionContext.SourceName"/>.</param>
    /// <param name="http">The run's HTTP client (its budget, validators and redactor belong to this run).</param>
    /// <param name="cancellationToken">Cancelled on timeout or shutdown; stop promptly when it fires.</param>
    /// <returns>The records, streamed.</returns>
    protected abstract IAsyncEnumerable<TRecord> ReadAsync(IngestionContext context, TOptions options, SourceHttpClient http, CancellationToken cancellationToken);
}
