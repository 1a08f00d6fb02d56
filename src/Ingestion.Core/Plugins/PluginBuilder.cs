using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Plugins;

/// <summary>
/// The builder a plug-in's entry point configures: it only records what the plug-in declares, so a plug-in
/// that fails (throws, declares a taken name, registers nothing) leaves nothing behind in the host.
/// </summary>
internal sealed class PluginBuilder(IConfiguration? configuration) : IIngestionBuilder
{
    public IServiceCollection Services { get; } = new ServiceCollection();

    public IConfiguration? Configuration { get; } = configuration;

    public List<StagedSource> Sources { get; } = [];

    public List<StagedOptions> Options { get; } = [];

    public IIngestionBuilder AddSource<TSource>(string name, Action<SourceOptions>? configure = null)
        where TSource : class, IIngestionSource
    {
        Sources.Add(new StagedSource(CheckName(name), typeof(TSource), null, configure));
        return this;
    }

    public IIngestionBuilder AddSource(string name, Func<IServiceProvider, IIngestionSource> factory, Action<SourceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(factory);
        Sources.Add(new StagedSource(CheckName(name), null, factory, configure));
        return this;
    }

    IIngestionBuilder IIngestionBuilder.AddSourceOptions<TOptions>(string sourceName, Action<TOptions>? configure, Func<TOptions, IEnumerable<string>>? validate)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(sourceName);
        if (typeof(TOptions).GetConstructor(Type.EmptyTypes) is null)
        {
            throw new ArgumentException($"Options type '{typeof(TOptions).FullName}' of source '{sourceName}' needs a public parameterless constructor.", nameof(sourceName));
        }

        Options.Add(new StagedOptions(
            sourceName,
            typeof(TOptions),
            config =>
            {
                var value = (TOptions)Activator.CreateInstance(typeof(TOptions))!;
                if (config is not null)
                {
                    Hosting.SourceConfiguration.Bind(config, sourceName, value);
                }

                configure?.Invoke(value);
                return value;
            },
            value => validate is null ? [] : validate((TOptions)value)));
        return this;
    }

    private static string CheckName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!Hosting.IngestionServiceCollectionExtensions.SourceNamePattern().IsMatch(name))
        {
            throw new ArgumentException($"Source name '{name}' is invalid: use 1-100 letters, digits, '_', '-' or '.', starting with a letter or digit.", nameof(name));
        }

        return name;
    }
}

/// <summary>A source a plug-in declared.</summary>
internal sealed record StagedSource(string Name, Type? Type, Func<IServiceProvider, IIngestionSource>? Factory, Action<SourceOptions>? Configure);

/// <summary>A source's own settings a plug-in declared: how to bind them and how to check them.</summary>
internal sealed record StagedOptions(string SourceName, Type Type, Func<IConfiguration?, object> Create, Func<object, IEnumerable<string>> Validate);
