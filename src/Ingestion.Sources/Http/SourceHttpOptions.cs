namespace Ingestion.Sources.Http;

/// <summary>
/// How a source talks HTTP: per-attempt and body-read timeouts, retries (408/429/5xx and network
/// errors, honouring <c>Retry-After</c>), a circuit breaker, response size caps, conditional requests,
/// request budgets and secret redaction. Every source with HTTP input has one, bound from
/// <c>Ingestion:Sources:&lt;name&gt;:Http</c>.
/// </summary>
public sealed class SourceHttpOptions
{
    /// <summary>The most time one attempt may take until the response headers arrive. Default 100 s.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(100);

    /// <summary>The most time the body may stay silent between two reads (a hanging server). Default 60 s.</summary>
    public TimeSpan ReadTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How many times one request is retried on 408, 429, 5xx, a network error or an attempt timeout. Default 2.
    /// Keep it small: the runner retries the whole run from its last checkpoint on top of this.
    /// </summary>
    public int MaxRetryAttempts { get; set; } = 2;

    /// <summary>The delay before the first retry; later ones back off exponentially, with jitter. Default 1 s.</summary>
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// The longest wait between two attempts of one request. A server asking (<c>Retry-After</c>) for a longer
    /// wait ends the request with a <see cref="TransientIngestionException"/> carrying that delay, so the
    /// runner retries the run later from its checkpoint. Default 30 s.
    /// </summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The most bytes one response may carry on the wire (compressed). Default 1 GiB.</summary>
    public long MaxResponseBytes { get; set; } = 1L << 30;

    /// <summary>The most bytes one response may expand to once decompressed (gzip, deflate, brotli). Default 4 GiB.</summary>
    public long MaxDecompressedBytes { get; set; } = 4L << 30;

    /// <summary>
    /// The most a compressed response may expand (decompressed bytes per compressed byte), checked past the
    /// first MiB: a gzip bomb fails early instead of filling the disk. Default 200.
    /// </summary>
    public double MaxExpansionRatio { get; set; } = 200;

    /// <summary>The most requests (attempts included) one run may send; combined with the run's <see cref="IngestionLimits.MaxRequests"/>.</summary>
    public int? MaxRequestsPerRun { get; set; }

    /// <summary>
    /// The most requests (attempts included) per calendar day in <see cref="TimeZone"/>, kept in the source state
    /// across runs (e.g. 4,700 of a 5,000/day quota). When spent, the run stops cleanly at its last checkpoint as
    /// partially succeeded, and the next run resumes there.
    /// </summary>
    public int? MaxRequestsPerDay { get; set; }

    /// <summary>The time zone whose calendar day <see cref="MaxRequestsPerDay"/> counts (IANA or Windows id). Default UTC.</summary>
    public string? TimeZone { get; set; }

    /// <summary>Send the saved <c>ETag</c>/<c>Last-Modified</c> back (<c>If-None-Match</c>/<c>If-Modified-Since</c>) on document fetches. Default on.</summary>
    public bool ConditionalRequests { get; set; } = true;

    /// <summary>
    /// Detect an unchanged document by its SHA-256 when the server ignores validators: the body is spooled to a
    /// temporary file, hashed, and the run ends as not modified when the hash equals the saved one. Default on.
    /// </summary>
    public bool DetectUnchangedContent { get; set; } = true;

    /// <summary>Headers added to every request (e.g. an API key header). Values of <see cref="SecretHeaders"/> are redacted everywhere.</summary>
    public IDictionary<string, string> Headers { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>Headers whose values are secrets (added to the defaults <c>Authorization</c>, <c>X-Api-Key</c>, <c>Api-Key</c>, <c>Ocp-Apim-Subscription-Key</c>).</summary>
    public IList<string> SecretHeaders { get; } = new List<string>();

    /// <summary>
    /// Query parameters whose values are secrets, redacted in URLs of logs and errors (added to the defaults
    /// <c>api_key</c>, <c>apikey</c>, <c>key</c>, <c>token</c>, <c>access_token</c>, <c>secret</c>, <c>client_secret</c>, <c>password</c>, <c>sig</c>, <c>signature</c>).
    /// </summary>
    public IList<string> SecretQueryParameters { get; } = new List<string>();

    /// <summary>
    /// 0-based indexes of URL path segments that are secrets (in <c>/v1/KEY/items</c> the key is segment 1): the
    /// segment's value is masked, by value, in every log message, error, job row and rejected record of the run.
    /// </summary>
    public IList<int> SecretPathSegments { get; } = new List<int>();

    /// <summary>
    /// Secret values masked wherever they appear (log messages, errors, job rows, rejected records), whatever
    /// setting or parameter carries them; bind them from a secret store rather than writing them in a file.
    /// </summary>
    public IList<string> SecretValues { get; } = new List<string>();

    /// <summary>The <c>User-Agent</c> sent. Default <c>Ingestion/1</c>.</summary>
    public string UserAgent { get; set; } = "Ingestion/1 (+open-data ingestion)";

    /// <summary>The circuit breaker shared by all runs of the source in this process.</summary>
    public HttpCircuitBreakerOptions CircuitBreaker { get; set; } = new();

    /// <summary>Returns the problems with these settings, each naming the setting; empty when valid.</summary>
    /// <param name="prefix">The configuration path of these options, e.g. <c>Ingestion:Sources:tickets:Http</c>.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<string> Validate(string prefix)
    {
        if (SecretPathSegments.FirstOrDefault(i => i < 0) is < 0 and var negative)
        {
            yield return $"{prefix}:SecretPathSegments holds {negative}; segment indexes start at 0.";
        }

        if (RequestTimeout <= TimeSpan.Zero)
        {
            yield return $"{prefix}:RequestTimeout must be positive (was {RequestTimeout}).";
        }

        if (ReadTimeout <= TimeSpan.Zero)
        {
            yield return $"{prefix}:ReadTimeout must be positive (was {ReadTimeout}).";
        }

        if (MaxRetryAttempts is < 0 or > 20)
        {
            yield return $"{prefix}:MaxRetryAttempts must be between 0 and 20 (was {MaxRetryAttempts}).";
        }

        if (MaxRetryAttempts > 0 && RetryDelay <= TimeSpan.Zero)
        {
            yield return $"{prefix}:RetryDelay must be positive when retries are enabled (was {RetryDelay}).";
        }

        if (MaxRetryDelay < TimeSpan.Zero)
        {
            yield return $"{prefix}:MaxRetryDelay must not be negative (was {MaxRetryDelay}).";
        }

        if (MaxResponseBytes <= 0)
        {
            yield return $"{prefix}:MaxResponseBytes must be positive (was {MaxResponseBytes}).";
        }

        if (MaxDecompressedBytes <= 0)
        {
            yield return $"{prefix}:MaxDecompressedBytes must be positive (was {MaxDecompressedBytes}).";
        }

        if (!(MaxExpansionRatio >= 1))
        {
            yield return $"{prefix}:MaxExpansionRatio must be at least 1 (was {MaxExpansionRatio}).";
        }

        if (MaxRequestsPerRun is <= 0)
        {
            yield return $"{prefix}:MaxRequestsPerRun must be positive (was {MaxRequestsPerRun}).";
        }

        if (MaxRequestsPerDay is <= 0)
        {
            yield return $"{prefix}:MaxRequestsPerDay must be positive (was {MaxRequestsPerDay}).";
        }

        if (TimeZone is { } tz && !TimeZoneInfo.TryFindSystemTimeZoneById(tz, out _))
        {
            yield return $"{prefix}:TimeZone '{tz}' is not a known time zone.";
        }

        foreach (var (name, _) in Headers)
        {
            if (string.IsNullOrWhiteSpace(name) || name.Any(c => c <= ' ' || c == ':' || c > '~'))
            {
                yield return $"{prefix}:Headers has an invalid header name '{name}'.";
            }
        }

        if (CircuitBreaker is null)
        {
            yield return $"{prefix}:CircuitBreaker must not be null.";
        }
        else
        {
            foreach (var e in CircuitBreaker.Validate($"{prefix}:CircuitBreaker"))
            {
                yield return e;
            }
        }
    }
}

/// <summary>The circuit breaker of a source: after too many failures it fails requests fast for a while.</summary>
public sealed class HttpCircuitBreakerOptions
{
    /// <summary>Whether the breaker is on. Default on.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The share of failed requests in the sampling window that opens the circuit. Default 0.5.</summary>
    public double FailureRatio { get; set; } = 0.5;

    /// <summary>The fewest requests in the sampling window before the ratio counts. Default 10.</summary>
    public int MinimumThroughput { get; set; } = 10;

    /// <summary>The sampling window. Default 30 s.</summary>
    public TimeSpan SamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the circuit stays open. Default 30 s.</summary>
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);

    internal IEnumerable<string> Validate(string prefix)
    {
        if (!Enabled)
        {
            yield break;
        }

        if (FailureRatio is <= 0 or > 1)
        {
            yield return $"{prefix}:FailureRatio must be in (0, 1] (was {FailureRatio}).";
        }

        if (MinimumThroughput < 2)
        {
            yield return $"{prefix}:MinimumThroughput must be at least 2 (was {MinimumThroughput}).";
        }

        if (SamplingDuration < TimeSpan.FromMilliseconds(500))
        {
            yield return $"{prefix}:SamplingDuration must be at least 500 ms (was {SamplingDuration}).";
        }

        if (BreakDuration < TimeSpan.FromMilliseconds(500))
        {
            yield return $"{prefix}:BreakDuration must be at least 500 ms (was {BreakDuration}).";
        }
    }
}
