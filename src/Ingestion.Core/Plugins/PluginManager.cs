namespace Ingestion.Plugins;

/// <summary>
/// The plug-ins of a host: what was loaded from which folder, which sources each registered, which
/// contract it was built against, and why any was refused. Registered in the container by
/// <see cref="PluginServiceCollectionExtensions.AddPluginsFrom(IIngestionBuilder, string, Action{PluginLoaderOptions}?)"/>.
/// </summary>
public sealed class PluginManager
{
    private readonly object _gate = new();
    private readonly List<PluginHandle> _loaded = [];
    private readonly List<PluginInfo> _refused = [];
    private readonly List<string> _folders = [];

    internal PluginManager()
    {
    }

    /// <summary>The plug-in folders scanned, in the order they were added.</summary>
    public IReadOnlyList<string> Folders
    {
        get
        {
            lock (_gate)
            {
                return _folders.ToList();
            }
        }
    }

    /// <summary>Every plug-in found, loaded or refused, ordered by folder then name.</summary>
    public IReadOnlyList<PluginInfo> Plugins
    {
        get
        {
            lock (_gate)
            {
                return _loaded.Select(h => h.Describe()).Concat(_refused)
                    .OrderBy(p => Path.GetDirectoryName(p.Folder), StringComparer.Ordinal)
                    .ThenBy(p => p.Name, StringComparer.Ordinal)
                    .ToList();
            }
        }
    }

    /// <summary>Reloads every plug-in whose files changed and none of whose sources is running (the others are reloaded when their runs end and a new one starts).</summary>
    /// <returns>The names of the plug-ins reloaded.</returns>
    public IReadOnlyList<string> ReloadChanged()
    {
        List<PluginHandle> handles;
        lock (_gate)
        {
            handles = _loaded.ToList();
        }

        return handles.Where(h => h.ReloadIfChanged()).Select(h => h.Name).ToList();
    }

    /// <summary>Writes the listing as plain text lines (for a <c>plugins list</c> command).</summary>
    /// <param name="writer">Where to write.</param>
    public void WriteListing(TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var plugins = Plugins;
        foreach (var folder in Folders)
        {
            writer.WriteLine($"Plug-in folder: {folder}");
        }

        writer.WriteLine($"{plugins.Count(p => p.Status == PluginStatus.Loaded)} loaded, {plugins.Count(p => p.Status == PluginStatus.Refused)} refused (host contract {IngestionContract.MajorVersion}, {SharedAssemblies.HostContract.Name} {SharedAssemblies.HostContract.Version})");
        foreach (var p in plugins)
        {
            if (p.Status == PluginStatus.Loaded)
            {
                writer.WriteLine($"  [loaded]  {p.Name} {p.AssemblyVersion} built against contract {p.ContractVersion?.Major} ({p.ContractVersion}), generation {p.Generation}");
                writer.WriteLine($"            from    {p.AssemblyPath}");
                writer.WriteLine($"            sources {string.Join(", ", p.Sources)}");
                if (p.ReloadError is not null)
                {
                    writer.WriteLine($"            last reload failed (previous build in use): {p.ReloadError}");
                }
            }
            else
            {
                writer.WriteLine($"  [refused] {p.Name}: {p.Error}");
            }
        }
    }

    internal PluginHandle? HandleOf(string sourceName)
    {
        lock (_gate)
        {
            return _loaded.FirstOrDefault(h => h.SourceNames.Contains(sourceName, StringComparer.Ordinal));
        }
    }

    internal IReadOnlyList<PluginHandle> Handles
    {
        get
        {
            lock (_gate)
            {
                return _loaded.ToList();
            }
        }
    }

    internal void AddFolder(string folder)
    {
        lock (_gate)
        {
            _folders.Add(folder);
        }
    }

    internal void Add(PluginHandle handle)
    {
        lock (_gate)
        {
            _loaded.Add(handle);
        }
    }

    internal void Refuse(string name, string folder, string mainPath, string error)
    {
        lock (_gate)
        {
            _refused.Add(new PluginInfo { Name = name, Folder = folder, AssemblyPath = mainPath, Status = PluginStatus.Refused, Error = error });
        }
    }

    internal bool Knows(string folder)
    {
        lock (_gate)
        {
            return _loaded.Any(h => string.Equals(h.Folder, folder, StringComparison.Ordinal)) || _refused.Any(r => string.Equals(r.Folder, folder, StringComparison.Ordinal));
        }
    }

    /// <summary>Loads every plug-in subfolder of <paramref name="folder"/> into the builder.</summary>
    internal void LoadFolder(Hosting.IngestionServiceCollectionExtensions.IngestionBuilder host, string folder, PluginLoaderOptions options)
    {
        AddFolder(folder);
        if (!Directory.Exists(folder))
        {
            return;
        }

        var shared = new SharedAssemblies(options.SharedAssemblies);
        foreach (var pluginFolder in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
        {
            var full = Path.GetFullPath(pluginFolder);
            if (Knows(full))
            {
                continue;
            }

            var name = Path.GetFileName(full);
            var mainPath = Path.Combine(full, name + ".dll");
            try
            {
                var generation = PluginGeneration.Load(name, full, mainPath, shared, host.Configuration, options.TimeProvider.GetUtcNow());
                var handle = new PluginHandle(name, full, mainPath, generation, shared, host.Configuration, options);
                try
                {
                    Commit(host, handle, generation);
                }
                catch
                {
                    generation.Unload();
                    throw;
                }

                Add(handle);
            }
            catch (PluginLoadException e)
            {
                Refuse(name, full, mainPath, e.Message);
            }
        }
    }

    /// <summary>Registers a loaded plug-in's declarations with the host, after checking that none of its source names is taken.</summary>
    private static void Commit(Hosting.IngestionServiceCollectionExtensions.IngestionBuilder host, PluginHandle handle, PluginGeneration generation)
    {
        foreach (var source in generation.Declared.Sources)
        {
            if (host.Catalog.Find(source.Name) is { } taken)
            {
                throw new PluginLoadException($"'{handle.MainPath}' declares source '{source.Name}', which is already registered by {taken.Origin}; source names must be unique, so this plug-in was not loaded.");
            }
        }

        foreach (var descriptor in generation.Declared.Services)
        {
            host.Services.Add(descriptor);
        }

        var origin = host.Origin;
        host.Origin = handle.Origin;
        try
        {
            foreach (var source in generation.Declared.Sources)
            {
                var name = source.Name;
                host.AddSource(name, sp => handle.CreateSource(name, sp), o => handle.ConfigureSourceOptions(name, o));
            }
        }
        finally
        {
            host.Origin = origin;
        }

        host.Catalog.AddStartupCheck(_ => handle.ValidateOptions());
    }
}
