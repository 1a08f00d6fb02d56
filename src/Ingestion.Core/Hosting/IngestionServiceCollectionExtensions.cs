using System.Text.RegularExpressions;
using Ingestion.Running;
using Ingestion.Sinks;
using Ingestion.Stores;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Ingestion.Hosting;

/// <summary>Sets up Ingestion in a service collection.</summary>
public static partial class IngestionServiceCollectionExtensions
{
    /// <summary>
    /// Adds the Ingestion runtime: the runner, in-memory job/state stores, run locks and sink (replace
    /// them with <c>Ingestion.Postgres</c>), a <see cref="TimeProvider"/>, an <see cref="System.Net.Http.IHttpClientFactory"/>
    /// (<c>services.AddHttpClient()</c>, which sources commonly ask for), and start-up validation.
    /// Idempotent: a second call returns a builder over the same registrations.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The <c>Ingestion</c> configuration section (source settings bind from its <c>Sources:&lt;name&gt;</c> children), or <see langword="null"/>.</param>
    /// <param name="configure">Adjusts the global options.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddIngestion(this IServiceCollection services, IConfiguration? configuration = null, Action<IngestionOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var existing = services.FirstOrDefault(d => d.ServiceType == typeof(IngestionBuilder))?.ImplementationInstance as IngestionBuilder;
        var builder = existing ?? new IngestionBuilder(services, configuration);
        if (existing is null)
        {
            services.AddSingleton(builder);
            services.AddSingleton(builder.Catalog);
            var options = services.AddOptions<IngestionOptions>();
            if (configuration is not null)
            {
                options.Bind(configuration);
            }

            options.Validate(o => o.MaxDegreeOfParallelism > 0, "Ingestion:MaxDegreeOfParallelism must be positive.");
            services.TryAddSingleton(TimeProvider.System);
            services.TryAddSingleton<ISourceStateStore, InMemorySourceStateStore>();
            services.TryAddSingleton<IImportJobStore, InMemoryImportJobStore>();
            services.TryAddSingleton<IRunLockProvider, InMemoryRunLockProvider>();
            services.TryAddSingleton<IIngestionSink, InMemorySink>();
            services.TryAddSingleton<IIngestionRunner, IngestionRunner>();
            services.TryAddSingleton<ActiveRuns>();
            services.TryAddSingleton(sp => new Diagnostics.IngestionTelemetry(sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IIngestionObserver, ActiveRuns>(sp => sp.GetRequiredService<ActiveRuns>()));
            services.TryAddSingleton<Operations.IIngestionOperations, Operations.IngestionOperations>();
            services.AddHttpClient();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, IngestionStartupValidator>());
        }
        else if (configuration is not null && builder.Configuration is null)
        {
            builder.Configuration = configuration;
        }

        if (configure is not null)
        {
            services.Configure(configure);
        }

        return builder;
    }

    /// <summary>
    /// Binds a source's own options (e.g. a CSV path) from <c>Ingestion:Sources:&lt;name&gt;</c> as named options,
    /// and validates them at start with <paramref name="validate"/>, whose messages should name the setting.
    /// </summary>
    /// <typeparam name="TOptions">The options class.</typeparam>
    /// <param name="builder">The builder.</param>
    /// <param name="sourceName">The source name (the options name).</param>
    /// <param name="configure">Adjusts the options after binding.</param>
    /// <param name="validate">Returns the problems with the options; empty when valid.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddSourceOptions<TOptions>(this IIngestionBuilder builder, string sourceName, Action<TOptions>? configure = null, Func<TOptions, IEnumerable<string>>? validate = null)
        where TOptions : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(sourceName);
        var options = builder.Services.AddOptions<TOptions>(sourceName);
        var sections = builder.Configuration is { } config ? SourceConfiguration.Sections(config, sourceName) : [];
        foreach (var section in sections)
        {
            options.Bind(section);
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        Catalog(builder).AddStartupCheck(sp => ConfigurationValueCheck
            .ThenValidate(sections, typeof(TOptions), () => validate?.Invoke(sp.GetRequiredService<IOptionsMonitor<TOptions>>().Get(sourceName)) ?? [])
            .Select(e => $"Source '{sourceName}': {e}"));

        return builder;
    }

    /// <summary>The catalog of sources registered through a builder.</summary>
    /// <param name="builder">The builder.</param>
    /// <returns>The catalog.</returns>
    public static SourceCatalog Catalog(this IIngestionBuilder builder) =>
        (builder as IngestionBuilder)?.Catalog ?? throw new ArgumentException("The builder does not come from AddIngestion().", nameof(builder));

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
    internal static partial Regex SourceNamePattern();

    internal sealed class IngestionBuilder(IServiceCollection services, IConfiguration? configuration) : IIngestionBuilder
    {
        public IServiceCollection Services { get; } = services;

        public IConfiguration? Configuration { get; set; } = configuration;

        public SourceCatalog Catalog { get; } = new();

        public string Origin { get; set; } = "host";

        public IIngestionBuilder AddSource<TSource>(string name, Action<SourceOptions>? configure = null)
            where TSource : class, IIngestionSource
        {
            Services.TryAddTransient<TSource>();
            return Add(name, typeof(TSource), sp => ActivatorUtilities.CreateInstance<TSource>(sp), configure);
        }

        IIngestionBuilder IIngestionBuilder.AddSourceOptions<TOptions>(string sourceName, Action<TOptions>? configure, Func<TOptions, IEnumerable<string>>? validate) =>
            IngestionServiceCollectionExtensions.AddSourceOptions(this, sourceName, configure, validate);

        public IIngestionBuilder AddSource(string name, Func<IServiceProvider, IIngestionSource> factory, Action<SourceOptions>? configure = null)
        {
            ArgumentNullException.ThrowIfNull(factory);
            return Add(name, null, factory, configure);
        }

        private IngestionBuilder Add(string name, Type? type, Func<IServiceProvider, IIngestionSource> factory, Action<SourceOptions>? configure)
        {
            ArgumentNullException.ThrowIfNull(name);
            if (!SourceNamePattern().IsMatch(name))
            {
                throw new ArgumentException($"Source name '{name}' is invalid: use 1-100 letters, digits, '_', '-' or '.', starting with a letter or digit.", nameof(name));
            }

            Catalog.Add(new SourceRegistration(name, type, factory) { Origin = Origin });
            var options = Services.AddOptions<SourceOptions>(name);
            var sections = Configuration is not null ? SourceConfiguration.Sections(Configuration, name) : [];
            foreach (var section in sections)
            {
                options.Bind(section);
            }

            if (configure is not null)
            {
                options.Configure(configure);
            }

            Catalog.AddStartupCheck(sp => ConfigurationValueCheck.ThenValidate(sections, typeof(SourceOptions), () =>
                sp.GetRequiredService<IOptionsMonitor<SourceOptions>>().Get(name).Validate(name)));
            return this;
        }
    }
}
