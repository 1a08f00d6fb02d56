using System.Diagnostics.CodeAnalysis;

namespace Ingestion.Diagnostics;

/// <summary>
/// The secret values of one run, masked by value wherever they appear (plain or URL-escaped) in the texts the
/// runtime keeps or shows: log messages, the run's error, the job row, rejected records. Thread-safe.
/// </summary>
public sealed class SecretMask
{
    /// <summary>What a secret is replaced with.</summary>
    public const string Mask = "***";

    /// <summary>Values shorter than this are not masked (they would garble every text).</summary>
    public const int MinLength = 4;

    private volatile string[] _values = [];
    private readonly Lock _gate = new();

    /// <summary>Whether any secret is registered.</summary>
    public bool IsEmpty => _values.Length == 0;

    /// <summary>Adds a secret value; short or repeated values are ignored.</summary>
    /// <param name="value">The secret.</param>
    /// <returns><see langword="true"/> when the value was added (new and long enough).</returns>
    public bool Add(string? value)
    {
        if (value is not { Length: >= MinLength })
        {
            return false;
        }

        lock (_gate)
        {
            if (Array.IndexOf(_values, value) >= 0)
            {
                return false;
            }

            // Longest first, so a secret containing another is masked whole.
            _values = [.. _values.Append(value).OrderByDescending(v => v.Length)];
            return true;
        }
    }

    /// <summary>Returns the text with every secret masked.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The masked text.</returns>
    [return: NotNullIfNotNull(nameof(text))]
    public string? Redact(string? text)
    {
        var values = _values;
        if (string.IsNullOrEmpty(text) || values.Length == 0)
        {
            return text;
        }

        foreach (var secret in values)
        {
            text = text.Replace(secret, Mask, StringComparison.Ordinal);
            var escaped = Uri.EscapeDataString(secret);
            if (!string.Equals(escaped, secret, StringComparison.Ordinal))
            {
                text = text.Replace(escaped, Mask, StringComparison.Ordinal);
            }
        }

        return text;
    }

    /// <summary>Returns the rejected record with every secret masked in its position, field, reason and raw value.</summary>
    /// <param name="rejected">The rejected record.</param>
    /// <returns>The masked record (the same instance when there is nothing to mask).</returns>
    public RejectedRecord Redact(RejectedRecord rejected) => IsEmpty ? rejected : new RejectedRecord(
        Redact(rejected.Position), Redact(rejected.Field), Redact(rejected.Reason), Redact(rejected.RawValue));

    /// <summary>Returns the error with every secret masked.</summary>
    /// <param name="error">The error.</param>
    /// <returns>The masked error.</returns>
    public IngestionError Redact(IngestionError error) => IsEmpty ? error : error with
    {
        Message = Redact(error.Message),
        Position = Redact(error.Position),
        Field = Redact(error.Field),
    };
}
