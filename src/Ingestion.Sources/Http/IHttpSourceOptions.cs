namespace Ingestion.Sources.Http;

/// <summary>
/// The settings of a source that reads over the shared HTTP layer: its <see cref="SourceHttpOptions"/> and a
/// validation that names each bad setting. Implemented by the options of every built-in source; implement it on
/// your own source's options to use <see cref="HttpSourceBase{TOptions, TRecord}"/> and
/// <see cref="HttpSourceBuilderExtensions.AddHttpSource{TSource, TOptions}"/>.
/// </summary>
public interface IHttpSourceOptions
{
    /// <summary>The HTTP settings (timeouts, retries, conditional requests, headers, budgets, size caps).</summary>
    SourceHttpOptions Http { get; }

    /// <summary>Returns the problems with these settings, each naming the setting; empty when valid.</summary>
    /// <param name="prefix">The configuration path of the options, e.g. <c>Ingestion:Sources:permits</c>.</param>
    /// <returns>The problems found.</returns>
    IEnumerable<string> Validate(string prefix);
}
