namespace Ingestion;

/// <summary>An error of a source run that names where it happened.</summary>
public class IngestionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public IngestionException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public IngestionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public IngestionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The source the error belongs to.</summary>
    public string? SourceName { get; init; }

    /// <summary>The input position (record number, line, page) where it happened.</summary>
    public string? Position { get; init; }

    /// <summary>The field at fault.</summary>
    public string? Field { get; init; }
}

/// <summary>A failure worth retrying (a dropped connection, HTTP 503): the runner retries the run from its last checkpoint.</summary>
public class TransientIngestionException : IngestionException
{
    /// <summary>Creates the exception.</summary>
    public TransientIngestionException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public TransientIngestionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public TransientIngestionException(string message, Exception? innerException)
        : base(message, innerException)
    {
    }

    /// <summary>How long the remote side asked to wait before retrying (HTTP <c>Retry-After</c>), when it said.</summary>
    public TimeSpan? RetryAfter { get; init; }
}
