using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using Ingestion.Diagnostics;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace Ingestion.Sources.Http;

/// <summary>
/// The HTTP client of one source run (create it with <see cref="ISourceHttpClientFactory"/>): every request
/// goes through the source's resilience pipeline (short retries with backoff and jitter on 408/429/5xx,
/// network errors and attempt timeouts, honouring <c>Retry-After</c>; a circuit breaker; a per-attempt
/// timeout), spends the request budget, and fails with messages that name the source and a redacted URL.
/// Bodies are streamed, decompressed by hand and capped (<see cref="SourceHttpOptions.MaxResponseBytes"/>,
/// <see cref="SourceHttpOptions.MaxDecompressedBytes"/>, <see cref="SourceHttpOptions.MaxExpansionRatio"/>).
/// </summary>
/// <remarks>
/// Failures are thrown as <see cref="TransientIngestionException"/> (408/429/5xx after the retries, network
/// errors, timeouts, an open circuit; with <see cref="TransientIngestionException.RetryAfter"/> when the
/// server said), which the runner retries from the last checkpoint, or as <see cref="IngestionException"/>
/// (other 4xx, caps exceeded), which fail the run. A spent budget throws
/// <see cref="RequestBudgetExhaustedException"/> before anything is sent: catch it between pages and call
/// <see cref="StopForBudget"/>.
/// </remarks>
public sealed class SourceHttpClient
{
    private readonly HttpClient _client;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;
    private readonly IngestionTelemetry? _telemetry;

    internal SourceHttpClient(HttpClient client, ResiliencePipeline<HttpResponseMessage> pipeline, SourceHttpRegistry.DayCounter counter, SourceHttpOptions options, IngestionContext context, IngestionTelemetry? telemetry = null)
    {
        _telemetry = telemetry;
        _client = client;
        _pipeline = pipeline;
        Options = options;
        Context = context;
        Redactor = new HttpRedactor(options, context);
        var day = RequestBudget.DayOf(context.TimeProvider.GetUtcNow(), options.TimeZone);
        counter.Seed(day, RequestBudget.SavedCount(context.State, day));
        int? perRun = (context.Limits.MaxRequests, options.MaxRequestsPerRun) switch
        {
            (null, null) => null,
            ({ } a, null) => a,
            (null, { } b) => b,
            ({ } a, { } b) => Math.Min(a, b),
        };
        Budget = new RequestBudget(perRun, options.MaxRequestsPerDay, day, counter);
    }

    /// <summary>The run this client belongs to.</summary>
    public IngestionContext Context { get; }

    /// <summary>The HTTP settings.</summary>
    public SourceHttpOptions Options { get; }

    /// <summary>The request budget of this run.</summary>
    public RequestBudget Budget { get; }

    /// <summary>Masks secrets in URLs and texts; add the source's API key with <see cref="HttpRedactor.AddSecret"/>.</summary>
    public HttpRedactor Redactor { get; }

    private string SourceName => Context.SourceName;

    /// <summary>Sends a GET and returns the successful response (the body not yet read).</summary>
    /// <param name="url">The URL.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The response; dispose it.</returns>
    public Task<SourceHttpResponse> GetAsync(Uri url, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(url);
        return SendAsync(() => new HttpRequestMessage(HttpMethod.Get, url), allowNotModified: false, cancellationToken);
    }

    /// <summary>
    /// Sends a request made by <paramref name="createRequest"/> (called once per attempt) through the pipeline,
    /// and returns the successful response with its body not yet read. The option headers, <c>User-Agent</c>
    /// and <c>Accept-Encoding</c> are added.
    /// </summary>
    /// <param name="createRequest">Creates a fresh request for each attempt.</param>
    /// <param name="allowNotModified">Return a 304 response instead of failing on it.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The response (2xx, or 304 when allowed); dispose it.</returns>
    /// <exception cref="TransientIngestionException">408/429/5xx after the retries, a network error, a timeout, an open circuit.</exception>
    /// <exception cref="IngestionException">Another error status, or a response larger than allowed.</exception>
    /// <exception cref="RequestBudgetExhaustedException">The request budget is spent.</exception>
    public async Task<SourceHttpResponse> SendAsync(Func<HttpRequestMessage> createRequest, bool allowNotModified, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(createRequest);
        var attempt = new AttemptState(this, createRequest);
        HttpResponseMessage response;
        try
        {
            response = await _pipeline.ExecuteAsync(
                static async (state, token) => await state.Client.SendOnceAsync(state, token).ConfigureAwait(false),
                attempt,
                cancellationToken).ConfigureAwait(false);
        }
        catch (BrokenCircuitException e)
        {
            throw new TransientIngestionException($"Source '{SourceName}': requests to {attempt.RedactedUrl} are suspended by the circuit breaker after repeated failures.", e)
            {
                SourceName = SourceName,
                Position = attempt.RedactedUrl,
                RetryAfter = e.RetryAfter,
            };
        }
        catch (TimeoutRejectedException e)
        {
            Log.RequestFailed(Context.Logger, SourceName, attempt.RedactedUrl, attempt.Attempts, "timeout");
            throw new TransientIngestionException($"Source '{SourceName}': no response from {attempt.RedactedUrl} within {Options.RequestTimeout.TotalMilliseconds:0} ms (Http:RequestTimeout), {attempt.Attempts} attempt(s).", e)
            {
                SourceName = SourceName,
                Position = attempt.RedactedUrl,
            };
        }
        catch (HttpRequestException e)
        {
            Log.RequestFailed(Context.Logger, SourceName, attempt.RedactedUrl, attempt.Attempts, Redactor.Redact(e.Message));
            throw new TransientIngestionException($"Source '{SourceName}': request to {attempt.RedactedUrl} failed after {attempt.Attempts} attempt(s): {Redactor.Redact(e.Message)}", e)
            {
                SourceName = SourceName,
                Position = attempt.RedactedUrl,
            };
        }

        var url = response.RequestMessage?.RequestUri ?? attempt.Url!;
        var redacted = Redactor.Redact(url);
        var status = response.StatusCode;
        if ((int)status is >= 200 and < 300 || (allowNotModified && status == HttpStatusCode.NotModified))
        {
            if (response.Content.Headers.ContentLength is { } length && length > Options.MaxResponseBytes)
            {
                response.Dispose();
                throw new IngestionException($"Source '{SourceName}': the response from {redacted} announces {length} bytes, over the limit of {Options.MaxResponseBytes} (Http:MaxResponseBytes).")
                {
                    SourceName = SourceName,
                    Position = redacted,
                };
            }

            Log.Fetched(Context.Logger, SourceName, redacted, (int)status, attempt.Attempts);
            return new SourceHttpResponse(response, url, redacted, SourceName, Redactor, (m, s) => OpenBody(m, s, redacted, hash: true));
        }

        string snippet;
        using (response)
        {
            using var body = OpenBody(response, await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), redacted, hash: false);
            snippet = Redactor.Redact(SourceHttpResponse.ReadSnippet(body, 300));
        }

        var reason = $"Source '{SourceName}': {redacted} answered {(int)status} {response.ReasonPhrase} after {attempt.Attempts} attempt(s)";
        Log.RequestFailed(Context.Logger, SourceName, redacted, attempt.Attempts, ((int)status).ToString(CultureInfo.InvariantCulture));
        if (SourceHttpRegistry.IsTransientStatus(status))
        {
            throw new TransientIngestionException($"{reason}: {snippet}", new HttpRequestException(reason, null, status))
            {
                SourceName = SourceName,
                Position = redacted,
                RetryAfter = SourceHttpRegistry.RetryAfterOf(response, Context.TimeProvider),
            };
        }

        var hint = status is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden ? " (check the API key or credentials)" : string.Empty;
        throw new IngestionException($"{reason}{hint}: {snippet}", new HttpRequestException(reason, null, status))
        {
            SourceName = SourceName,
            Position = redacted,
        };
    }

    /// <summary>
    /// Opens a whole document from an <c>http(s)</c> URL, a <c>file:</c> URL or a local path, or returns
    /// <see langword="null"/> after reporting <see cref="IngestionContext.NotModified"/> when it did not change:
    /// a 304 to the saved validators, the same content hash as saved (the body is then spooled to a temporary
    /// file first), or, for a file, the same length and modification time.
    /// </summary>
    /// <param name="location">The URL or path.</param>
    /// <param name="cancellationToken">Cancels the fetch.</param>
    /// <returns>The document, or <see langword="null"/> when not modified.</returns>
    public async Task<SourceDocument?> OpenDocumentAsync(string location, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(location);
        if (Uri.TryCreate(location, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
        {
            return ReportSize(await FetchDocumentAsync(uri, cancellationToken).ConfigureAwait(false));
        }

        var path = uri is { IsFile: true } ? uri.LocalPath : location;
        return ReportSize(OpenFile(path));
    }

    /// <summary>Tells the run how large a document is and how much of it was read, for progress and ETA displays.</summary>
    private SourceDocument? ReportSize(SourceDocument? document)
    {
        if (document is { Length: > 0 and var length })
        {
            Func<long>? read = document.Content switch
            {
                FileStream file => () => file.Position,
                GuardedStream body => () => body.BytesRead,
                _ => null,
            };
            Context.ReportInputSize(null, length, read);
        }

        return document;
    }

    private SourceDocument? OpenFile(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new IngestionException($"Source '{SourceName}': the file '{path}' does not exist.") { SourceName = SourceName, Position = path };
        }

        var modified = new DateTimeOffset(info.LastWriteTimeUtc, TimeSpan.Zero);
        var etag = string.Create(CultureInfo.InvariantCulture, $"\"file-{info.Length:x}-{info.LastWriteTimeUtc.Ticks:x}\"");
        var state = Context.State;
        if (Options.ConditionalRequests && Context.Mode == IngestionMode.Incremental && state.ETag == etag)
        {
            Context.NotModified(new SourceCheckpoint(null) { ETag = etag, LastModified = modified, Values = Budget.ToValues() });
            return null;
        }

        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan | FileOptions.Asynchronous);
        return new SourceDocument(stream, null, path, null, null, etag, modified, null, info.Length);
    }

    private async Task<SourceDocument?> FetchDocumentAsync(Uri uri, CancellationToken cancellationToken)
    {
        var state = Context.State;
        var conditional = Options.ConditionalRequests && Context.Mode == IngestionMode.Incremental;
        var response = await SendAsync(
            () =>
            {
                var request = new HttpRequestMessage(HttpMethod.Get, uri);
                if (conditional && state.ETag is { Length: > 0 } etag)
                {
                    request.Headers.TryAddWithoutValidation("If-None-Match", etag);
                }

                if (conditional && state.LastModified is { } since)
                {
                    request.Headers.IfModifiedSince = since;
                }

                return request;
            },
            allowNotModified: conditional,
            cancellationToken).ConfigureAwait(false);

        if (response.StatusCode == HttpStatusCode.NotModified)
        {
            Log.NotModified(Context.Logger, SourceName, response.RedactedUrl, "304");
            await response.DisposeAsync().ConfigureAwait(false);
            Context.NotModified(new SourceCheckpoint(null) { Values = Budget.ToValues() });
            return null;
        }

        if (!(Options.DetectUnchangedContent && conditional && state.ContentHash is { Length: > 0 }))
        {
            var plain = response.ContentHeaders.ContentEncoding.Count == 0;
            return new SourceDocument(response.Body, response, response.RedactedUrl, response.MediaType, response.Encoding, response.ETag, response.LastModified, null, plain ? response.ContentHeaders.ContentLength : null);
        }

        // Spool to a temporary file while hashing, so an unchanged body is known before a record is read.
        var spool = new FileStream(Path.Combine(Path.GetTempPath(), $"ingestion-{Guid.NewGuid():N}.tmp"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        try
        {
            await using (response.ConfigureAwait(false))
            {
                await response.Body.CopyToAsync(spool, 1 << 16, cancellationToken).ConfigureAwait(false);
                var hash = response.ContentHash!;
                if (string.Equals(hash, state.ContentHash, StringComparison.OrdinalIgnoreCase))
                {
                    Log.NotModified(Context.Logger, SourceName, response.RedactedUrl, "same content hash");
                    Context.NotModified(new SourceCheckpoint(null) { ETag = response.ETag, LastModified = response.LastModified, ContentHash = hash, Values = Budget.ToValues() });
                    await spool.DisposeAsync().ConfigureAwait(false);
                    return null;
                }

                spool.Position = 0;
                return new SourceDocument(spool, null, response.RedactedUrl, response.MediaType, response.Encoding, response.ETag, response.LastModified, hash, spool.Length);
            }
        }
        catch
        {
            await spool.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Creates a checkpoint with the request budget's values merged into <paramref name="values"/>; when a
    /// document is given, its validators and hash too (pass it only once the document has been read to its end).
    /// </summary>
    /// <param name="cursor">The cursor, or <see langword="null"/> to keep the saved one.</param>
    /// <param name="values">The source's own values, or <see langword="null"/>.</param>
    /// <param name="document">The document fully read, or <see langword="null"/>.</param>
    /// <returns>The checkpoint.</returns>
    public SourceCheckpoint CreateCheckpoint(string? cursor, IReadOnlyDictionary<string, string>? values = null, SourceDocument? document = null)
    {
        var merged = new Dictionary<string, string>(Budget.ToValues(), StringComparer.Ordinal);
        if (values is not null)
        {
            foreach (var (k, v) in values)
            {
                merged[k] = v;
            }
        }

        return document is null
            ? new SourceCheckpoint(cursor) { Values = merged }
            : document.CreateCheckpoint(cursor, merged);
    }

    /// <summary>Reports <see cref="CreateCheckpoint"/> to the run.</summary>
    /// <param name="cursor">The cursor, or <see langword="null"/> to keep the saved one.</param>
    /// <param name="values">The source's own values.</param>
    /// <param name="document">The document fully read, or <see langword="null"/>.</param>
    public void Checkpoint(string? cursor, IReadOnlyDictionary<string, string>? values = null, SourceDocument? document = null) =>
        Context.Checkpoint(CreateCheckpoint(cursor, values, document));

    /// <summary>
    /// Ends a run whose budget is spent: re-reports the resume position (with the budget's values) and tells the
    /// runner the source stopped early, so the run ends partially succeeded and the next run resumes there.
    /// </summary>
    /// <param name="exception">The exception thrown by the request that was not sent.</param>
    /// <param name="cursor">The resume cursor (the same as the last checkpoint's), or <see langword="null"/> to keep the saved one.</param>
    /// <param name="values">The resume values (the same as the last checkpoint's).</param>
    public void StopForBudget(RequestBudgetExhaustedException exception, string? cursor, IReadOnlyDictionary<string, string>? values = null)
    {
        ArgumentNullException.ThrowIfNull(exception);
        Checkpoint(cursor, values);
        Log.BudgetSpent(Context.Logger, SourceName, Budget.Describe());
        Context.StoppedEarly(exception.Message);
    }

    private async Task<HttpResponseMessage> SendOnceAsync(AttemptState state, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Budget.Spend(SourceName);
        state.Attempts++;
        using var request = state.Create();
        state.Url = request.RequestUri;
        state.RedactedUrl = Redactor.Redact(request.RequestUri);
        foreach (var (name, value) in Options.Headers)
        {
            request.Headers.Remove(name);
            request.Headers.TryAddWithoutValidation(name, value);
        }

        if (!request.Headers.Contains("User-Agent"))
        {
            request.Headers.TryAddWithoutValidation("User-Agent", Options.UserAgent);
        }

        request.Headers.AcceptEncoding.Clear();
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("gzip"));
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("deflate"));
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("br"));
        if (state.Attempts > 1)
        {
            Log.Retrying(Context.Logger, SourceName, state.RedactedUrl, state.Attempts);
        }

        using var activity = _telemetry?.StartHttp(SourceName, request.Method.Method, state.RedactedUrl);
        try
        {
            var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
            _telemetry?.HttpCompleted(SourceName, (int)response.StatusCode, null, activity);
            return response;
        }
        catch (Exception e) when (_telemetry is not null)
        {
            _telemetry.HttpCompleted(SourceName, null, e, activity);
            throw;
        }
    }

    private GuardedStream OpenBody(HttpResponseMessage message, Stream raw, string redacted, bool hash)
    {
        var describe = $"Source '{SourceName}', {redacted}";
        var time = Context.TimeProvider;
        GuardedStream? wire = null;
        wire = new GuardedStream(
            raw,
            Options.MaxResponseBytes,
            n => $"{describe}: the response exceeded {Options.MaxResponseBytes} bytes (Http:MaxResponseBytes); aborted after {n} bytes.",
            describe,
            time,
            Options.ReadTimeout,
            onDispose: _telemetry is null ? null : () => _telemetry.HttpBytes(SourceName, wire?.BytesRead ?? 0));
        var encodings = message.Content.Headers.ContentEncoding;
        Stream decoded = wire;
        foreach (var encoding in encodings.Reverse())
        {
            decoded = encoding.ToUpperInvariant() switch
            {
                "GZIP" or "X-GZIP" => new GZipStream(decoded, CompressionMode.Decompress),
                "DEFLATE" => new ZLibStream(decoded, CompressionMode.Decompress),
                "BR" => new BrotliStream(decoded, CompressionMode.Decompress),
                "IDENTITY" => decoded,
                _ => throw new IngestionException($"{describe}: unsupported Content-Encoding '{encoding}'.") { SourceName = SourceName, Position = redacted },
            };
        }

        return new GuardedStream(
            decoded,
            Options.MaxDecompressedBytes,
            n => $"{describe}: the decompressed response exceeded {Options.MaxDecompressedBytes} bytes (Http:MaxDecompressedBytes); aborted after {n} bytes.",
            describe,
            time,
            idleTimeout: null,
            compressed: ReferenceEquals(decoded, wire) ? null : wire,
            maxRatio: Options.MaxExpansionRatio,
            hash: hash);
    }

    private sealed class AttemptState(SourceHttpClient client, Func<HttpRequestMessage> create)
    {
        public SourceHttpClient Client { get; } = client;

        public Func<HttpRequestMessage> Create { get; } = create;

        public int Attempts { get; set; }

        public Uri? Url { get; set; }

        public string RedactedUrl { get; set; } = "(no request sent)";
    }
}
