using System.Reflection;
using McMaster.NETCore.Plugins;
using Microsoft.Extensions.Configuration;

namespace Ingestion.Plugins;

/// <summary>One load of a plug-in: its McMaster loader (one collectible load context), its entry points' declarations, and when it was loaded.</summary>
internal sealed class PluginGeneration
{
    private PluginLoader? _loader;

    private PluginGeneration(PluginLoader loader, PluginImage image, Assembly assembly, PluginBuilder declared, string stamp, DateTimeOffset loadedAt)
    {
        _loader = loader;
        Image = image;
        Assembly = assembly;
        Declared = declared;
        Stamp = stamp;
        LoadedAt = loadedAt;
        Sources = declared.Sources.ToDictionary(s => s.Name, StringComparer.Ordinal);
    }

    public PluginImage Image { get; }

    public Assembly Assembly { get; }

    public PluginBuilder Declared { get; }

    public IReadOnlyDictionary<string, StagedSource> Sources { get; }

    public string Stamp { get; }

    public DateTimeOffset LoadedAt { get; }

    /// <summary>The shadow copy of the plug-in folder the generation was loaded from.</summary>
    public string ShadowFolder { get; private init; } = string.Empty;

    /// <summary>A weak reference to the load context, for tests that check it is collected after unloading.</summary>
    public WeakReference ContextReference => new(_loader?.LoadContext);

    /// <summary>Loads a plug-in folder and runs its entry points against a recording builder.</summary>
    /// <exception cref="PluginLoadException">Why the plug-in cannot be used, naming the file.</exception>
    public static PluginGeneration Load(string name, string folder, string mainPath, SharedAssemblies shared, IConfiguration? configuration, DateTimeOffset now)
    {
        if (!File.Exists(mainPath))
        {
            var found = Directory.EnumerateFiles(folder, "*.dll").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            throw new PluginLoadException(
                $"Plug-in folder '{folder}' has no '{name}.dll': a plug-in folder holds '<name>/<name>.dll' with its dependencies" +
                (found.Count > 0 ? $" (found: {string.Join(", ", found)})." : " (it has no .dll at all)."));
        }

        var stamp = PluginFiles.Stamp(folder);
        var image = PluginInspector.Inspect(mainPath);
        var ownContract = Path.Combine(folder, SharedAssemblies.HostContract.Name + ".dll");
        if (File.Exists(ownContract))
        {
            throw new PluginLoadException(
                $"'{mainPath}' ships its own copy of the contract ('{ownContract}'); the contract always comes from the host. " +
                "Reference Ingestion.Abstractions with ExcludeAssets=\"runtime\" (a project reference: Private=\"false\") and remove the file.");
        }

        PluginDependencies.CheckDepsJson(mainPath, folder, shared);
        PluginDependencies dependencies;
        try
        {
            dependencies = new PluginDependencies(mainPath);
        }
        catch (InvalidOperationException e)
        {
            throw new PluginLoadException($"'{mainPath}': its dependencies cannot be resolved ({e.Message}).", e);
        }

        dependencies.CheckReferences(name, mainPath, image, shared);

        var shadow = PluginFiles.ShadowCopy(folder, name);
        var shadowMain = Path.Combine(shadow, Path.GetFileName(mainPath));
        PluginLoader? loader = null;
        try
        {
            try
            {
                loader = shared.CreateLoader(shadowMain);
            }
            catch (Exception e) when (e is InvalidOperationException or FileNotFoundException or FileLoadException)
            {
                throw new PluginLoadException($"'{mainPath}': its dependencies cannot be resolved ({e.Message}).", e);
            }

            Assembly assembly;
            try
            {
                assembly = loader.LoadDefaultAssembly();
            }
            catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
            {
                throw new PluginLoadException($"'{mainPath}' cannot be loaded: {Describe(e)}", e);
            }

            var declared = new PluginBuilder(configuration);
            foreach (var entry in EntryPoints(assembly, mainPath))
            {
                try
                {
                    entry.Configure(declared);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    throw new PluginLoadException($"'{mainPath}': the entry point {entry.GetType().FullName}.Configure threw {Describe(e)}", e);
                }
            }

            if (declared.Sources.Count == 0)
            {
                throw new PluginLoadException($"'{mainPath}' declares no source: its entry point registered nothing (call builder.AddSource<TSource>(name) in Configure).");
            }

            var duplicate = declared.Sources.GroupBy(s => s.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null)
            {
                throw new PluginLoadException($"'{mainPath}' declares source '{duplicate.Key}' {duplicate.Count()} times; source names must be unique.");
            }

            foreach (var source in declared.Sources.Where(s => s.Type is not null))
            {
                if (source.Type!.IsAbstract || source.Type.GetConstructors().Length == 0)
                {
                    throw new PluginLoadException($"'{mainPath}': source '{source.Name}' has type {source.Type.FullName}, which is abstract or has no public constructor.");
                }
            }

            return new PluginGeneration(loader, image, assembly, declared, stamp, now) { ShadowFolder = shadow };
        }
        catch
        {
            loader?.Dispose();
            PluginFiles.DeleteShadow(shadow);
            throw;
        }
    }

    /// <summary>Unloads the load context; it is collected once nothing refers to its types any more.</summary>
    public void Unload()
    {
        _loader?.Dispose();
        _loader = null;
        PluginFiles.DeleteShadow(ShadowFolder);
    }

    private static List<IIngestionPlugin> EntryPoints(Assembly assembly, string mainPath)
    {
        Type[] types;
        try
        {
            types = assembly.GetExportedTypes();
        }
        catch (Exception e) when (e is ReflectionTypeLoadException or FileNotFoundException or FileLoadException or BadImageFormatException or TypeLoadException)
        {
            throw new PluginLoadException($"'{mainPath}' cannot be loaded: {Describe(e)}", e);
        }

        var entries = new List<IIngestionPlugin>();
        foreach (var type in types.Where(t => t is { IsClass: true, IsAbstract: false } && typeof(IIngestionPlugin).IsAssignableFrom(t)).OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            if (type.GetConstructor(Type.EmptyTypes) is null)
            {
                throw new PluginLoadException($"'{mainPath}': entry point {type.FullName} needs a public parameterless constructor.");
            }

            try
            {
                entries.Add((IIngestionPlugin)Activator.CreateInstance(type)!);
            }
            catch (TargetInvocationException e) when (e.InnerException is { } inner)
            {
                throw new PluginLoadException($"'{mainPath}': the constructor of entry point {type.FullName} threw {Describe(inner)}", inner);
            }
        }

        if (entries.Count == 0)
        {
            throw new PluginLoadException($"'{mainPath}' declares no source: it has no entry point (a public class implementing {typeof(IIngestionPlugin).FullName} with a public parameterless constructor).");
        }

        return entries;
    }

    internal static string Describe(Exception e) => e switch
    {
        ReflectionTypeLoadException { LoaderExceptions: { Length: > 0 } loader } => string.Join("; ", loader.Where(x => x is not null).Select(x => Describe(x!)).Distinct(StringComparer.Ordinal)),
        FileNotFoundException f => $"a missing dependency: {f.FileName ?? f.Message}",
        FileLoadException f => $"a dependency that cannot be loaded: {f.FileName ?? f.Message} ({f.Message})",
        TargetInvocationException { InnerException: { } inner } => Describe(inner),
        _ => $"{e.GetType().Name}: {e.Message}",
    };
}

/// <summary>The files of plug-in folders: their identity (to detect a new build copied over them) and their shadow copies.</summary>
internal static class PluginFiles
{
    private const string ShadowRootName = "ingestion-plugin-shadow";

    /// <summary>Copies a plug-in folder to a new folder under the temporary directory, removing copies left by processes that ended.</summary>
    public static string ShadowCopy(string folder, string name)
    {
        var root = Path.Combine(Path.GetTempPath(), ShadowRootName);
        RemoveStale(root);
        var target = Path.Combine(root, $"{Environment.ProcessId}-{name}-{Guid.NewGuid():N}");
        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(target, Path.GetRelativePath(folder, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }

        return target;
    }

    /// <summary>Deletes a shadow copy (best effort: a file still in use is left for the next clean-up).</summary>
    public static void DeleteShadow(string shadow)
    {
        if (shadow.Length == 0 || !Directory.Exists(shadow))
        {
            return;
        }

        try
        {
            Directory.Delete(shadow, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void RemoveStale(string root)
    {
        if (!Directory.Exists(root))
        {
            return;
        }

        foreach (var dir in Directory.EnumerateDirectories(root))
        {
            var dash = Path.GetFileName(dir).IndexOf('-', StringComparison.Ordinal);
            if (dash > 0 && int.TryParse(Path.GetFileName(dir).AsSpan(0, dash), System.Globalization.CultureInfo.InvariantCulture, out var pid) && !IsAlive(pid))
            {
                DeleteShadow(dir);
            }
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>A hash of every file's relative path and content.</summary>
    public static string Stamp(string folder)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        if (!Directory.Exists(folder))
        {
            return "missing";
        }

        foreach (var file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(Path.GetRelativePath(folder, file) + "\0"));
            try
            {
                hash.AppendData(File.ReadAllBytes(file));
            }
            catch (IOException)
            {
                // A file being copied over right now: the stamp differs, and the next check sees the final content.
                hash.AppendData("\0busy"u8);
            }
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }
}
