using System.Reflection;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;

namespace Ingestion.Plugins;

/// <summary>What the metadata of a plug-in file says, read without loading it.</summary>
/// <param name="Name">The assembly name.</param>
/// <param name="References">The assemblies it references.</param>
/// <param name="Contract">Its reference to Ingestion.Abstractions.</param>
internal sealed record PluginImage(AssemblyName Name, IReadOnlyList<AssemblyName> References, AssemblyName Contract);

/// <summary>Checks a plug-in file before anything of it is loaded: a .NET assembly, readable, built against this contract.</summary>
internal static class PluginInspector
{
    /// <summary>Reads and checks the metadata of the plug-in's main assembly.</summary>
    /// <exception cref="PluginLoadException">The file is not a .NET assembly, is corrupt, or targets another contract.</exception>
    public static PluginImage Inspect(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw new PluginLoadException($"'{path}' cannot be read: {e.Message}", e);
        }

        using var pe = new PEReader(new MemoryStream(bytes, writable: false), PEStreamOptions.PrefetchEntireImage);
        PEHeaders headers;
        try
        {
            headers = pe.PEHeaders;
        }
        catch (BadImageFormatException e)
        {
            throw HasPeSignature(bytes)
                ? new PluginLoadException($"'{path}' is corrupt: its Portable Executable headers cannot be read ({e.Message}).", e)
                : new PluginLoadException($"'{path}' is not a .NET assembly: it is not a Portable Executable file ({e.Message}).", e);
        }

        if (headers.CorHeader is null)
        {
            throw new PluginLoadException($"'{path}' is not a .NET assembly: it is a native Portable Executable without .NET metadata.");
        }

        MetadataReader md;
        AssemblyName name;
        List<AssemblyName> references;
        try
        {
            if (!pe.HasMetadata)
            {
                throw new PluginLoadException($"'{path}' is corrupt: its .NET header points to no metadata.");
            }

            md = pe.GetMetadataReader();
            if (!md.IsAssembly)
            {
                throw new PluginLoadException($"'{path}' is a .NET module, not an assembly.");
            }

            name = md.GetAssemblyDefinition().GetAssemblyName();
            references = md.AssemblyReferences.Select(h => md.GetAssemblyReference(h).GetAssemblyName()).ToList();

            // Walk the type and method tables so a truncated or damaged image fails here, with the file named,
            // rather than later inside the runtime.
            foreach (var t in md.TypeDefinitions)
            {
                var type = md.GetTypeDefinition(t);
                _ = md.GetString(type.Name);
                foreach (var m in type.GetMethods())
                {
                    var method = md.GetMethodDefinition(m);
                    _ = md.GetString(method.Name);
                    if (method.RelativeVirtualAddress != 0)
                    {
                        _ = pe.GetMethodBody(method.RelativeVirtualAddress);
                    }
                }
            }
        }
        catch (BadImageFormatException e)
        {
            throw new PluginLoadException($"'{path}' is corrupt: its .NET metadata cannot be read ({e.Message}).", e);
        }
        catch (InvalidOperationException e)
        {
            throw new PluginLoadException($"'{path}' is corrupt: its .NET metadata cannot be read ({e.Message}).", e);
        }

        var host = SharedAssemblies.HostContract;
        var contract = references.FirstOrDefault(r => string.Equals(r.Name, host.Name, StringComparison.OrdinalIgnoreCase))
            ?? throw new PluginLoadException($"'{path}' ({name.Name} {name.Version}) does not reference {host.Name}: it is not an Ingestion plug-in.");
        if (contract.Version?.Major != IngestionContract.MajorVersion)
        {
            throw new PluginLoadException(
                $"'{path}' was built against an incompatible contract: {contract.Name} {contract.Version} (contract version {contract.Version?.Major}); " +
                $"this host implements contract version {IngestionContract.MajorVersion} ({host.Name} {host.Version}). Rebuild the plug-in against {host.Name} {IngestionContract.MajorVersion}.x.");
        }

        return new PluginImage(name, references, contract);
    }

    /// <summary>Whether the bytes start like a Portable Executable file (the "MZ" and "PE\0\0" signatures).</summary>
    private static bool HasPeSignature(byte[] bytes)
    {
        if (bytes.Length < 0x40 || bytes[0] != 'M' || bytes[1] != 'Z')
        {
            return false;
        }

        var offset = BitConverter.ToInt32(bytes, 0x3C);
        return offset > 0 && offset <= bytes.Length - 4 && bytes[offset] == 'P' && bytes[offset + 1] == 'E' && bytes[offset + 2] == 0 && bytes[offset + 3] == 0;
    }
}
