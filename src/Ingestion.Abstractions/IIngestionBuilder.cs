using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion;

/// <summary>
/// Registers sources and their services with the host's container. Returned by
/// <c>services.AddIngestion()</c> and passed to <see cref="IIngestionPlugin.Configure(IIngestionBuilder)"/>.
/// </summary>
public interface IIngestionBuilder
{
    /// <summary>The host's service collection: plug-ins add their own services here.</summary>
    IServiceCollection Services { get; }

    /// <summary>The <c>Ingestion</c> configuration section, when the host supplied configuration.</summary>
    IConfiguration? Configuration { get; }

    /// <summary>
    /// Registers a source class under a name. A new instance is created from the container for each run.
    /// Its <see cref="SourceOptions"/> bind from <c>Ingestion:Sources:&lt;name&gt;</c>, then <paramref name="configure"/> runs.
    /// </summary>
    /// <typeparam name="TSource">The source class.</typeparam>
    /// <param name="name">The unique source name (letters, digits, <c>-</c>, <c>_</c>, <c>.</c>).</param>
    /// <param name="configure">Adjusts the source's runtime settings.</param>
    /// <returns>This builder.</returns>
    IIngestionBuilder AddSource<TSource>(string name, Action<SourceOptions>? configure = null)
        where TSource : class, IIngestionSource;

    /// <summary>Registers a source created by a factory for each run.</summary>
    /// <param name="name">The unique source name.</param>
    /// <param name="factory">Creates the source for a run.</param>
    /// <param name="configure">Adjusts the source's runtime settings.</param>
    /// <returns>This builder.</returns>
    IIngestionBuilder AddSource(string name, Func<IServiceProvider, IIngestionSource> factory, Action<SourceOptions>? configure = null);

    /// <summary>
    /// Declares a source's own settings (a URL, a path, an API key name): bound from
    /// <c>Ingestion:Sources:&lt;sourceName&gt;</c>, adjusted by <paramref name="configure"/>, and checked at start
    /// by <paramref name="validate"/>, whose messages should name the setting.
    /// A source registered by a plug-in receives the bound instance as a constructor parameter of type
    /// <typeparamref name="TOptions"/>; a source registered by the host reads it from
    /// <c>IOptionsMonitor&lt;TOptions&gt;.Get(sourceName)</c>.
    /// </summary>
    /// <typeparam name="TOptions">The settings class (public, with a public parameterless constructor).</typeparam>
    /// <param name="sourceName">The source the settings belong to.</param>
    /// <param name="configure">Adjusts the settings after binding.</param>
    /// <param name="validate">Returns the problems with the settings; empty when valid.</param>
    /// <returns>This builder.</returns>
    /// <exception cref="NotSupportedException">This builder does not implement source settings.</exception>
    IIngestionBuilder AddSourceOptions<TOptions>(string sourceName, Action<TOptions>? configure = null, Func<TOptions, IEnumerable<string>>? validate = null)
        where TOptions : class =>
        throw new NotSupportedException($"{GetType().FullName} does not support AddSourceOptions.");
}

/// <summary>
/// The entry point of a plug-in DLL: the host finds public classes implementing this interface
/// (with a public parameterless constructor) and calls <see cref="Configure(IIngestionBuilder)"/>.
/// </summary>
public interface IIngestionPlugin
{
    /// <summary>Registers the plug-in's sources, options and services.</summary>
    /// <param name="builder">The host's ingestion builder.</param>
    void Configure(IIngestionBuilder builder);
}

/// <summary>Facts about the contract a plug-in was built against.</summary>
public static class IngestionContract
{
    /// <summary>The major version of the plug-in contract; a plug-in built against another major version is refused.</summary>
    public const int MajorVersion = 1;
}
