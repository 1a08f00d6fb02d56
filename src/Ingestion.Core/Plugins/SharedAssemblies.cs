using System.Reflection;
using System.Runtime.Loader;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Ingestion.Plugins;

/// <summary>
/// The assemblies every plug-in shares with the host, the host context they come from, and the McMaster
/// <see cref="PluginLoader"/> built on them: shared (contract) types resolve to the host's copies; every other
/// dependency resolves from the plug-in's folder first (its deps.json, then <c>&lt;name&gt;.dll</c> beside it),
/// then from the host.
/// </summary>
internal sealed class SharedAssemblies
{
    /// <summary>The contract types: Ingestion.Abstractions and the Microsoft.Extensions abstractions its public types expose.</summary>
    private static readonly Type[] ContractTypes =
    [
        typeof(IIngestionPlugin),
        typeof(IServiceCollection),
        typeof(ILogger),
        typeof(IConfiguration),
        typeof(IChangeToken),
        typeof(IOptions<>),
    ];

    private readonly HashSet<string> _names;
    private readonly AssemblyLoadContext _host;

    public SharedAssemblies(IEnumerable<string> extra)
    {
        _names = new HashSet<string>(ContractTypes.Select(t => t.Assembly.GetName().Name!).Concat(extra), StringComparer.OrdinalIgnoreCase);
        _host = AssemblyLoadContext.GetLoadContext(typeof(IIngestionSource).Assembly) ?? AssemblyLoadContext.Default;
    }

    /// <summary>The host's contract assembly.</summary>
    public static AssemblyName HostContract { get; } = typeof(IIngestionSource).Assembly.GetName();

    public bool IsShared(AssemblyName name) => name.Name is { } n && _names.Contains(n);

    public bool IsSharedFile(string fileName) => _names.Contains(Path.GetFileNameWithoutExtension(fileName));

    /// <summary>The host's version of a shared assembly, or <see langword="null"/> when the host cannot load it.</summary>
    public Version? HostVersion(AssemblyName name)
    {
        try
        {
            return _host.LoadFromAssemblyName(new AssemblyName(name.Name!)).GetName().Version;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// A McMaster loader for a plug-in's main assembly (a shadow copy): unloadable, sharing the contract types and
    /// the configured assemblies with the host, loading files from their path (the shadow copy keeps the dropped
    /// files free and <c>Assembly.Location</c> real). Its own hot reload stays off: reloads happen between runs.
    /// </summary>
    /// <exception cref="InvalidOperationException">The plug-in's deps.json cannot be read.</exception>
    public PluginLoader CreateLoader(string mainPath) =>
        PluginLoader.CreateFromAssemblyFile(mainPath, isUnloadable: true, ContractTypes, config =>
        {
            config.DefaultContext = _host;
            config.PreferSharedTypes = false;
            config.EnableHotReload = false;
            config.LoadInMemory = false;
            foreach (var name in _names.Where(n => HostVersion(new AssemblyName(n)) is not null))
            {
                config.SharedAssemblies.Add(new AssemblyName(name));
            }
        });
}
