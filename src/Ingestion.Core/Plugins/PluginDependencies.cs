using System.Collections.Frozen;
using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using System.Text.Json;

namespace Ingestion.Plugins;

/// <summary>
/// Checks, before a plug-in is loaded, where each assembly it references would come from: its own folder, the
/// host (shared contract, framework, or the host's own dependencies), or nowhere. Refuses the plug-in when a
/// dependency is missing, or when one it does not ship would bind to a host copy of another major version (the
/// usual mistake: <c>EnableDynamicLoading</c> forgotten, so its private dependencies were never copied).
/// </summary>
internal sealed class PluginDependencies
{
    private readonly string _folder;
    private readonly AssemblyDependencyResolver _resolver;

    /// <summary>Reads the plug-in's deps.json.</summary>
    /// <exception cref="InvalidOperationException">The deps.json cannot be read.</exception>
    public PluginDependencies(string mainPath)
    {
        _folder = Path.GetDirectoryName(mainPath)!;
        _resolver = new AssemblyDependencyResolver(mainPath);
    }

    /// <summary>Where a dependency of the plug-in comes from in its folder, or <see langword="null"/> when it is not there.</summary>
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

    /// <summary>Fails, naming the plug-in, each assembly and the versions wanted and available, when a reference cannot be satisfied as built.</summary>
    /// <exception cref="PluginLoadException">A dependency is missing, or would bind to a host copy the plug-in was not built against.</exception>
    public void CheckReferences(string name, string mainPath, PluginImage image, SharedAssemblies shared)
    {
        var missing = new List<string>();
        var mismatched = new List<string>();
        foreach (var (reference, from) in References(mainPath, image))
        {
            var by = from is null ? string.Empty : $" (referenced by {from})";
            if (shared.IsShared(reference))
            {
                var host = shared.HostVersion(reference);
                if (host is null || (reference.Version is { } v && v > host))
                {
                    mismatched.Add($"shared assembly {reference.Name}: wants {reference.Version}, the host has {host?.ToString() ?? "none"}{by}");
                }

                continue;
            }

            if (ResolvePrivate(reference) is not null)
            {
                continue;
            }

            if (!HostAssemblies.Has(reference))
            {
                missing.Add($"{reference.Name} {reference.Version}{by}");
                continue;
            }

            if (HostAssemblies.IsFramework(reference) || reference.Version is not { } wanted || HostAssemblies.Version(reference) is not { } available)
            {
                continue;
            }

            if (wanted.Major != available.Major)
            {
                mismatched.Add($"{reference.Name}: wants {wanted}, does not ship it, and the host's is {available} (another major version){by}");
            }
            else if (wanted > available)
            {
                mismatched.Add($"{reference.Name}: wants {wanted}, does not ship it, and the host's is older ({available}){by}");
            }
        }

        if (missing.Count > 0)
        {
            throw new PluginLoadException($"Plug-in {name} ('{mainPath}') has a missing dependency: {string.Join(", ", missing)} is neither in '{_folder}' nor provided by the host.");
        }

        if (mismatched.Count > 0)
        {
            throw new PluginLoadException(
                $"Plug-in {name} ('{mainPath}') would run against assemblies it was not built for: {string.Join("; ", mismatched)}. " +
                "Its calls into them would fail at run time (MissingMethodException, TypeLoadException). Build the plug-in with " +
                "<EnableDynamicLoading>true</EnableDynamicLoading> so its private dependencies are copied beside it, and drop the whole output folder" +
                " (a shared assembly must come from the host: build against the host's version or older).");
        }
    }

    /// <summary>Fails, naming the files, when the plug-in's deps.json lists runtime files that are not in its folder.</summary>
    public static void CheckDepsJson(string mainPath, string folder, SharedAssemblies shared)
    {
        var depsPath = Path.ChangeExtension(mainPath, ".deps.json");
        if (!File.Exists(depsPath))
        {
            return;
        }

        List<string> missing = [];
        try
        {
            using var deps = JsonDocument.Parse(File.ReadAllBytes(depsPath));
            if (!deps.RootElement.TryGetProperty("targets", out var targets))
            {
                return;
            }

            foreach (var library in targets.EnumerateObject().SelectMany(t => t.Value.EnumerateObject()))
            {
                if (!library.Value.TryGetProperty("runtime", out var runtime))
                {
                    continue;
                }

                foreach (var asset in runtime.EnumerateObject())
                {
                    var file = Path.GetFileName(asset.Name);
                    if (file.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
                        && !string.Equals(file, Path.GetFileName(mainPath), StringComparison.OrdinalIgnoreCase)
                        && !File.Exists(Path.Combine(folder, file))
                        && !shared.IsSharedFile(file)
                        && !HostAssemblies.Has(new AssemblyName(Path.GetFileNameWithoutExtension(file))))
                    {
                        missing.Add($"{file} (from {library.Name})");
                    }
                }
            }
        }
        catch (JsonException e)
        {
            throw new PluginLoadException($"'{depsPath}' is corrupt: {e.Message}", e);
        }

        if (missing.Count > 0)
        {
            throw new PluginLoadException($"'{mainPath}' has a missing dependency: {string.Join(", ", missing.Distinct(StringComparer.Ordinal))} listed in '{Path.GetFileName(depsPath)}' is not in '{folder}'.");
        }
    }

    /// <summary>The main assembly's references, then those of the other assemblies the plug-in ships, with the file that references them.</summary>
    private IEnumerable<(AssemblyName Reference, string? From)> References(string mainPath, PluginImage image)
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { image.Name.Name! };
        var files = Directory.EnumerateFiles(_folder, "*.dll").Where(f => !string.Equals(f, mainPath, StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal).ToList();
        foreach (var file in files)
        {
            seen.Add(Path.GetFileNameWithoutExtension(file));
        }

        foreach (var reference in image.References)
        {
            yield return (reference, null);
        }

        foreach (var file in files)
        {
            foreach (var reference in ReadReferences(file).Where(r => r.Name is { } n && !seen.Contains(n)))
            {
                yield return (reference, Path.GetFileName(file));
            }
        }
    }

    /// <summary>The assembly references of a shipped file; none when it is not a readable .NET assembly (a native library).</summary>
    private static List<AssemblyName> ReadReferences(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var pe = new PEReader(stream);
            if (!pe.HasMetadata)
            {
                return [];
            }

            var md = pe.GetMetadataReader();
            return md.AssemblyReferences.Select(h => md.GetAssemblyReference(h).GetAssemblyName()).ToList();
        }
        catch (Exception e) when (e is BadImageFormatException or InvalidOperationException or IOException)
        {
            return [];
        }
    }
}

/// <summary>What the host can give a plug-in that does not ship an assembly: the framework's and the host's own dependencies.</summary>
internal static class HostAssemblies
{
    private static readonly FrozenDictionary<string, string> Trusted = TrustedPlatformAssemblies();
    private static readonly string FrameworkRoot = Path.GetDirectoryName(Path.GetDirectoryName(RuntimeEnvironment.GetRuntimeDirectory().TrimEnd(Path.DirectorySeparatorChar))!)!;

    /// <summary>Whether the host can supply the assembly.</summary>
    public static bool Has(AssemblyName name) => name.Name is { } n && (Trusted.ContainsKey(n) || Loaded(n) is not null);

    /// <summary>Whether the assembly is part of a shared framework (its versions are unified by design).</summary>
    public static bool IsFramework(AssemblyName name) =>
        name.Name is { } n && Trusted.TryGetValue(n, out var path) && path.StartsWith(FrameworkRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    /// <summary>The version the host would give, or <see langword="null"/> when it cannot tell.</summary>
    public static Version? Version(AssemblyName name)
    {
        if (name.Name is not { } n)
        {
            return null;
        }

        if (Loaded(n) is { } loaded)
        {
            return loaded.GetName().Version;
        }

        try
        {
            return Trusted.TryGetValue(n, out var path) ? AssemblyName.GetAssemblyName(path).Version : null;
        }
        catch (Exception e) when (e is IOException or BadImageFormatException)
        {
            return null;
        }
    }

    private static Assembly? Loaded(string name) =>
        AssemblyLoadContext.Default.Assemblies.FirstOrDefault(a => string.Equals(a.GetName().Name, name, StringComparison.OrdinalIgnoreCase));

    private static FrozenDictionary<string, string> TrustedPlatformAssemblies()
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is string tpa)
        {
            foreach (var file in tpa.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                map.TryAdd(Path.GetFileNameWithoutExtension(file), file);
            }
        }

        return map.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase);
    }
}
