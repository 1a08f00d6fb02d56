using Ingestion.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sources.Http;

/// <summary>Registers sources built on <see cref="HttpSourceBase{TOptions, TRecord}"/>.</summary>
public static class HttpSourceBuilderExtensions
{
    /// <summary>
    /// Registers <typeparamref name="TSource"/> under <paramref name="name"/>: adds the shared HTTP layer, binds its
    /// <typeparamref name="TOptions"/> from <c>Ingestion:Sources:&lt;name&gt;</c> (then <paramref name="configure"/>
    /// runs), validates them at start with <see cref="IHttpSourceOptions.Validate"/>, and creates the source from
    /// the container for each run.
    /// </summary>
    /// <typeparam name="TSource">The source class (its constructor's parameters come from the container).</typeparam>
    /// <typeparam name="TOptions">Its options.</typeparam>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="name">The source name.</param>
    /// <param name="configure">Adjusts the options after binding.</param>
    /// <param name="configureSource">Adjusts the runtime settings (table, key, batch size, error budget...).</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddHttpSource<TSource, TOptions>(this IIngestionBuilder builder, string name, Action<TOptions>? configure = null, Action<SourceOptions>? configureSource = null)
        where TSource : class, IIngestionSource
        where TOptions : class, IHttpSourceOptions
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        builder.AddSourceHttp();
        builder.AddSourceOptions(name, configure, o => o.Validate($"Ingestion:Sources:{name}"));
        return builder.AddSource(name, sp => ActivatorUtilities.CreateInstance<TSource>(sp), configureSource);
    }
}
