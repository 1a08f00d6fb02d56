namespace Ingestion.AspNetCore.Endpoints;

/// <summary>Settings of the endpoints mapped by <c>app.MapIngestion(prefix)</c>.</summary>
public sealed class IngestionEndpointOptions
{
    /// <summary>
    /// The authorization policy the write routes (run, run-all, pause, resume, cancel) require. When it is
    /// <see langword="null"/>, the write routes are refused with 403 outside the Development environment, and
    /// open in Development only.
    /// </summary>
    public string? WritePolicy { get; set; }

    /// <summary>The authorization policy the read routes and the dashboard page require, or <see langword="null"/> to leave them as the host's group conventions make them.</summary>
    public string? ReadPolicy { get; set; }

    /// <summary>The page size of list routes when the request names none.</summary>
    public int DefaultPageSize { get; set; } = 50;

    /// <summary>The largest page size a request may ask for.</summary>
    public int MaxPageSize { get; set; } = 500;

    /// <summary>The title shown by the dashboard page.</summary>
    public string DashboardTitle { get; set; } = "Ingestion";

    /// <summary>Lists the problems of these settings, each naming the setting.</summary>
    /// <returns>The problems; empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (WritePolicy is { } write && string.IsNullOrWhiteSpace(write))
        {
            problems.Add($"{nameof(IngestionEndpointOptions)}.{nameof(WritePolicy)} is blank: name an authorization policy, or leave it null to refuse writes outside Development.");
        }

        if (ReadPolicy is { } read && string.IsNullOrWhiteSpace(read))
        {
            problems.Add($"{nameof(IngestionEndpointOptions)}.{nameof(ReadPolicy)} is blank: name an authorization policy or leave it null.");
        }

        if (DefaultPageSize < 1)
        {
            problems.Add($"{nameof(IngestionEndpointOptions)}.{nameof(DefaultPageSize)} is {DefaultPageSize}; it must be at least 1.");
        }

        if (MaxPageSize < DefaultPageSize)
        {
            problems.Add($"{nameof(IngestionEndpointOptions)}.{nameof(MaxPageSize)} ({MaxPageSize}) is smaller than {nameof(DefaultPageSize)} ({DefaultPageSize}).");
        }

        return problems;
    }
}
