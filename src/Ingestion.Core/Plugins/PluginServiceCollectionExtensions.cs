using Ingestion.Hosting;
using Ingestion.Running;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Ingestion.Plugins;

/// <summary>Loads source plug-ins from drop folders.</summary>
public static class PluginServiceCollectionExtensions
{
    /// <summary>
    /// Loads every plug-in in <paramref name="path"/>, one subfolder per plug-in
    /// (<c>&lt;path&gt;/&lt;name&gt;/&lt;name&gt;.dll</c> with its deps.json and private dependencies), each in its own
    /// collectible load context, and registers the sources their entry points declare. A plug-in that cannot be
    /// used is refused with an error naming its file (see <see cref="PluginManager.Plugins"/>); the host and the
    /// other plug-ins are unaffected. A missing folder loads nothing.
    /// </summary>
    /// <param name="builder">The builder from <c>AddIngestion()</c>.</param>
    /// <param name="path">The plug-in folder; a relative path is relative to <see cref="AppContext.BaseDirectory"/>.</param>
    /// <param name="configure">Adjusts the loader options (bound first from <c>Ingestion:Plugins</c>).</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddPluginsFrom(this IIngestionBuilder builder, string path, Action<PluginLoaderOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var host = builder as IngestionServiceCollectionExtensions.IngestionBuilder
            ?? throw new ArgumentException("The builder does not come from AddIngestion().", nameof(builder));
        var options = BindOptions(builder);
        configure?.Invoke(options);
        var manager = Manager(host);
        manager.LoadFolder(host, Path.GetFullPath(path, AppContext.BaseDirectory), options);
        return builder;
    }

    /// <summary>
    /// Loads the plug-ins of the folder named by the <c>Ingestion:Plugins:Path</c> setting; does nothing when it is not set.
    /// </summary>
    /// <param name="builder">The builder from <c>AddIngestion(configuration)</c>.</param>
    /// <param name="configure">Adjusts the loader options after binding.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddPlugins(this IIngestionBuilder builder, Action<PluginLoaderOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = BindOptions(builder);
        configure?.Invoke(options);
        return string.IsNullOrWhiteSpace(options.Path) ? builder : builder.AddPluginsFrom(options.Path, o =>
        {
            o.ReloadOnChange = options.ReloadOnChange;
            o.TimeProvider = options.TimeProvider;
            foreach (var name in options.SharedAssemblies.Except(o.SharedAssemblies, StringComparer.OrdinalIgnoreCase).ToList())
            {
                o.SharedAssemblies.Add(name);
            }
        });
    }

    private static PluginLoaderOptions BindOptions(IIngestionBuilder builder)
    {
        var options = new PluginLoaderOptions();
        builder.Configuration?.GetSection(PluginLoaderOptions.SectionName).Bind(options);
        return options;
    }

    private static PluginManager Manager(IngestionServiceCollectionExtensions.IngestionBuilder host)
    {
        if (host.Services.FirstOrDefault(d => d.ServiceType == typeof(PluginManager))?.ImplementationInstance is PluginManager existing)
        {
            return existing;
        }

        var manager = new PluginManager();
        host.Services.AddSingleton(manager);
        host.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IIngestionObserver, PluginRunObserver>());
        host.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, PluginStartupReporter>());
        return manager;
    }
}
