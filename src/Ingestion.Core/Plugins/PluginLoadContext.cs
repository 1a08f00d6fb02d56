using System.Reflection;
using System.Runtime.Loader;

namespace Ingestion.Plugins;

/// <summary>
/// The collectible load context of one plug-in generation. Shared (contract) assemblies resolve to the
/// host's copies; every other dependency resolves from the plug-in's folder first (its deps.json, then
/// <c>&lt;name&gt;.dll</c> beside the plug-in), then from the host. The folder it loads from is a shadow copy of
/// the drop folder, so the dropped files are never locked or mapped and a new build can be copied over them
/// while loaded, and <c>Assembly.Location</c> still names a real file beside the plug-in's other files.
/// </summary>
internal sealed class PluginLoadContext : AssemblyLoadContext
{
    private readonly string _folder;
    private readonly AssemblyDependencyResolver _resolver;
    private readonly SharedAssemblies _shared;

    public PluginLoadContext(string name, string mainAssemblyPath, SharedAssemblies shared)
        : base($"plugin:{name}", isCollectible: true)
    {
        _folder = Path.GetDirectoryName(mainAssemblyPath)!;
        _resolver = new AssemblyDependencyResolver(mainAssemblyPath);
        _shared = shared;
    }

    /// <summary>Loads an assembly file of the plug-in's (shadow) folder.</summary>
    public Assembly LoadFile(string path) => LoadFromAssemblyPath(path);

    /// <summary>Where a dependency of the plug-in would come from: its folder, or <see langword="null"/> when not there.</summary>
    public string? ResolvePrivate(AssemblyName name)
    {
        var path = _resolver.ResolveAssemblyToPath(name);
        if (path is not null && File.Exists(path))
        {
            return path;
        }

        var beside = Path.Combine(_folder, name.Name + ".dll");
        return File.Exists(beside) ? beside : null;
    }

    protected override Assembly? Load(AssemblyName assemblyName)
    {
        if (_shared.IsShared(assemblyName))
        {
            return _shared.LoadFromHost(assemblyName);
        }

        var path = ResolvePrivate(assemblyName);
        return path is null ? null : LoadFile(path);
    }

    protected override IntPtr LoadUnmanagedDll(string unmanagedDllName)
    {
        var path = _resolver.ResolveUnmanagedDllToPath(unmanagedDllName);
        return path is null ? IntPtr.Zero : LoadUnmanagedDllFromPath(path);
    }
}

/// <summary>The assemblies every plug-in shares with the host, and the host context they come from.</summary>
internal sealed class SharedAssemblies
{
    /// <summary>The contract and the Microsoft.Extensions abstractions its public types expose.</summary>
    private static readonly string[] Contract =
    [
        "Ingestion.Abstractions",
        "Microsoft.Extensions.DependencyInjection.Abstractions",
        "Microsoft.Extensions.Logging.Abstractions",
        "Microsoft.Extensions.Configuration.Abstractions",
        "Microsoft.Extensions.Primitives",
        "Microsoft.Extensions.Options",
    ];

    private readonly HashSet<string> _names;
    private readonly AssemblyLoadContext _host;

    public SharedAssemblies(IEnumerable<string> extra)
    {
        _names = new HashSet<string>(Contract.Concat(extra), StringComparer.OrdinalIgnoreCase);
        _host = AssemblyLoadContext.GetLoadContext(typeof(IIngestionSource).Assembly) ?? AssemblyLoadContext.Default;
    }

    /// <summary>The host's contract assembly.</summary>
    public static AssemblyName HostContract { get; } = typeof(IIngestionSource).Assembly.GetName();

    public bool IsShared(AssemblyName name) => name.Name is { } n && _names.Contains(n);

    public bool IsSharedFile(string fileName) => _names.Contains(Path.GetFileNameWithoutExtension(fileName));

    public Assembly LoadFromHost(AssemblyName name) => _host.LoadFromAssemblyName(new AssemblyName(name.Name!));

    /// <summary>The host's version of a shared assembly, or <see langword="null"/> when the host cannot load it.</summary>
    public Version? HostVersion(AssemblyName name)
    {
        try
        {
            return LoadFromHost(name).GetName().Version;
        }
        catch (FileNotFoundException)
        {
            return null;
        }
    }
}
