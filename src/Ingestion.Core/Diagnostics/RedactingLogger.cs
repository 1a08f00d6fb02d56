using Microsoft.Extensions.Logging;

namespace Ingestion.Diagnostics;

/// <summary>
/// A logger of one run that masks the run's secrets in every message, structured value and exception text before
/// they reach the host's logging providers, so a key never lands in a console, a file or a log service.
/// </summary>
/// <param name="inner">The host's logger.</param>
/// <param name="mask">The run's secrets.</param>
internal sealed class RedactingLogger(ILogger inner, SecretMask mask) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => inner.BeginScope(state);

    public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        ArgumentNullException.ThrowIfNull(formatter);
        if (mask.IsEmpty)
        {
            inner.Log(logLevel, eventId, state, exception, formatter);
            return;
        }

        // Structured providers read the state's values directly (not only the message): mask them too.
        var message = mask.Redact(formatter(state, exception));
        var values = state is IReadOnlyList<KeyValuePair<string, object?>> pairs
            ? pairs.Select(p => new KeyValuePair<string, object?>(p.Key, p.Value is string s ? mask.Redact(s) : p.Value is null or ValueType ? p.Value : mask.Redact(p.Value.ToString()))).ToList()
            : [new KeyValuePair<string, object?>("{OriginalFormat}", message)];
        inner.Log(logLevel, eventId, new RedactedState(values, message), Redact(exception), static (s, _) => s.Message);
    }

    private Exception? Redact(Exception? exception)
    {
        if (exception is null)
        {
            return null;
        }

        var text = exception.ToString();
        var masked = mask.Redact(text);
        return ReferenceEquals(text, masked) || text == masked ? exception : new RedactedException(exception, masked);
    }

    private sealed class RedactedState(List<KeyValuePair<string, object?>> values, string message) : IReadOnlyList<KeyValuePair<string, object?>>
    {
        public string Message { get; } = message;

        public int Count => values.Count;

        public KeyValuePair<string, object?> this[int index] => values[index];

        public IEnumerator<KeyValuePair<string, object?>> GetEnumerator() => values.GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

        public override string ToString() => Message;
    }
}

/// <summary>Stands in a log entry for an exception whose text held a secret: the same type name and text, masked.</summary>
internal sealed class RedactedException(Exception original, string maskedText) : Exception(MaskedMessage(original, maskedText))
{
    /// <summary>The type of the exception this one stands for.</summary>
    public string OriginalType { get; } = original.GetType().FullName ?? original.GetType().Name;

    public override string? StackTrace => null;

    public override string ToString() => maskedText;

    private static string MaskedMessage(Exception original, string maskedText)
    {
        // The first line of Exception.ToString() is "Type: message"; keep the masked message part.
        var firstLine = maskedText.Split('\n', 2)[0].TrimEnd('\r');
        var prefix = (original.GetType().FullName ?? string.Empty) + ": ";
        return firstLine.StartsWith(prefix, StringComparison.Ordinal) ? firstLine[prefix.Length..] : firstLine;
    }
}
