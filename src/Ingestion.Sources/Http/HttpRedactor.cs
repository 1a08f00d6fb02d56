using System.Text;
using Ingestion.Diagnostics;

namespace Ingestion.Sources.Http;

/// <summary>
/// Keeps secrets (API keys, tokens) out of logs, errors, job rows and rejected records: replaces the
/// values of secret query parameters in URLs, and every known secret value in any text, with <c>***</c>.
/// </summary>
public sealed class HttpRedactor
{
    /// <summary>What a secret is replaced with.</summary>
    public const string Mask = SecretMask.Mask;

    private static readonly string[] DefaultSecretParameters =
        ["api_key", "apikey", "api-key", "key", "token", "access_token", "refresh_token", "id_token", "auth", "auth_token", "secret", "client_secret",
         "password", "passwd", "pwd", "sig", "signature", "subscription-key", "appid", "app_id", "app_key", "appkey", "access_key", "private_token",
         "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature"];

    // A parameter or header whose name contains one of these is secret too (myApiKey, X-Partner-Token, client_secret_2).
    private static readonly string[] SecretNameParts = ["apikey", "api_key", "api-key", "token", "secret", "password", "signature", "credential"];

    private static readonly string[] DefaultSecretHeaders = ["Authorization", "Proxy-Authorization", "X-Api-Key", "Api-Key", "Ocp-Apim-Subscription-Key", "Cookie"];

    private readonly HashSet<string> _parameters;
    private readonly HashSet<string> _headers;
    private readonly SecretMask _values = new();
    private readonly IngestionContext? _context;
    private readonly int[] _secretSegments = [];

    /// <summary>Creates a redactor with the default secret names plus those of <paramref name="options"/>.</summary>
    /// <param name="options">The HTTP options: their secret parameter and header names, and the values of their secret headers.</param>
    public HttpRedactor(SourceHttpOptions? options = null)
        : this(options, null)
    {
    }

    /// <summary>
    /// Creates a redactor whose every secret value (configured, or found in a URL under a secret name or in a secret
    /// path segment) is also registered with the run (<see cref="IngestionContext.AddSecret"/>), so the runtime masks
    /// it in the run's logs, error, job row and rejected records too.
    /// </summary>
    /// <param name="options">The HTTP options.</param>
    /// <param name="context">The run, or <see langword="null"/>.</param>
    public HttpRedactor(SourceHttpOptions? options, IngestionContext? context)
    {
        _context = context;
        _parameters = new HashSet<string>(DefaultSecretParameters, StringComparer.OrdinalIgnoreCase);
        _headers = new HashSet<string>(DefaultSecretHeaders, StringComparer.OrdinalIgnoreCase);
        if (options is null)
        {
            return;
        }

        _secretSegments = [.. options.SecretPathSegments];
        foreach (var secret in options.SecretValues)
        {
            AddSecret(secret);
        }

        foreach (var p in options.SecretQueryParameters)
        {
            _parameters.Add(p);
        }

        foreach (var h in options.SecretHeaders)
        {
            _headers.Add(h);
        }

        foreach (var (name, value) in options.Headers)
        {
            if (IsSecretHeader(name))
            {
                AddSecret(value);
                if (value.IndexOf(' ', StringComparison.Ordinal) is > 0 and var space)
                {
                    AddSecret(value[(space + 1)..]); // "Bearer xyz": the token alone too
                }
            }
        }
    }

    /// <summary>Whether a header's value is a secret.</summary>
    /// <param name="name">The header name.</param>
    /// <returns><see langword="true"/> for secret headers.</returns>
    public bool IsSecretHeader(string name) => _headers.Contains(name) || HasSecretPart(name);

    /// <summary>Whether a query parameter's value is a secret.</summary>
    /// <param name="name">The parameter name.</param>
    /// <returns><see langword="true"/> for secret parameters.</returns>
    public bool IsSecretParameter(string name) => _parameters.Contains(name) || HasSecretPart(name);

    private static bool HasSecretPart(string name) => SecretNameParts.Any(p => name.Contains(p, StringComparison.OrdinalIgnoreCase));

    /// <summary>Adds a secret value (e.g. an API key from options) to hide wherever it appears. Values shorter than 4 characters are ignored.</summary>
    /// <param name="value">The secret.</param>
    public void AddSecret(string? value)
    {
        if (_values.Add(value))
        {
            _context?.AddSecret(value!);
        }
    }

    /// <summary>Returns a URL with the values of secret query parameters and known secrets masked.</summary>
    /// <param name="uri">The URL.</param>
    /// <returns>The redacted URL text.</returns>
    public string Redact(Uri? uri)
    {
        if (uri is null)
        {
            return string.Empty;
        }

        var text = uri.IsAbsoluteUri ? uri.AbsoluteUri : uri.OriginalString;
        if (uri.IsAbsoluteUri)
        {
            // Secret path segments are learned as values, then masked by value below (and everywhere else later).
            foreach (var index in _secretSegments)
            {
                if (index >= 0 && index + 1 < uri.Segments.Length)
                {
                    AddSecret(Uri.UnescapeDataString(uri.Segments[index + 1].TrimEnd('/')));
                }
            }
        }

        var q = text.IndexOf('?', StringComparison.Ordinal);
        if (uri.IsAbsoluteUri && !string.IsNullOrEmpty(uri.UserInfo))
        {
            if (uri.UserInfo.IndexOf(':', StringComparison.Ordinal) is >= 0 and var colon)
            {
                AddSecret(Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]));
            }

            text = text.Replace(uri.UserInfo + "@", Mask + "@", StringComparison.Ordinal);
            q = text.IndexOf('?', StringComparison.Ordinal);
        }

        if (q >= 0)
        {
            var hash = text.IndexOf('#', q);
            var query = hash >= 0 ? text[(q + 1)..hash] : text[(q + 1)..];
            var sb = new StringBuilder(text.Length);
            sb.Append(text, 0, q + 1);
            var first = true;
            foreach (var part in query.Split('&'))
            {
                if (!first)
                {
                    sb.Append('&');
                }

                first = false;
                var eq = part.IndexOf('=', StringComparison.Ordinal);
                var name = Uri.UnescapeDataString(eq >= 0 ? part[..eq] : part);
                if (eq >= 0 && IsSecretParameter(name))
                {
                    AddSecret(Uri.UnescapeDataString(part[(eq + 1)..].Replace('+', ' ')));
                    sb.Append(part, 0, eq + 1).Append(Mask);
                }
                else
                {
                    sb.Append(part);
                }
            }

            if (hash >= 0)
            {
                sb.Append(text, hash, text.Length - hash);
            }

            text = sb.ToString();
        }

        return Redact(text);
    }

    /// <summary>Returns a text with every known secret value masked (also in its URL-escaped form).</summary>
    /// <param name="text">The text (a message, a raw record).</param>
    /// <returns>The redacted text, or <see langword="null"/> for <see langword="null"/>.</returns>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(text))]
    public string? Redact(string? text) => _values.Redact(text);
}
