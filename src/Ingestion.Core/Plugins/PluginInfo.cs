namespace Ingestion.Plugins;

/// <summary>Whether a plug-in is in use.</summary>
public enum PluginStatus
{
    /// <summary>Loaded: its sources are registered and run.</summary>
    Loaded,

    /// <summary>Refused: nothing of it was registered; <see cref="PluginInfo.Error"/> says why.</summary>
    Refused,
}

/// <summary>What the host knows about one plug-in folder: what was loaded, from where, which sources, which contract, or why it was refused.</summary>
public sealed record PluginInfo
{
    /// <summary>The plug-in name (its folder name).</summary>
    public required string Name { get; init; }

    /// <summary>The plug-in's folder.</summary>
    public required string Folder { get; init; }

    /// <summary>The plug-in's main assembly file (<c>&lt;folder&gt;/&lt;name&gt;.dll</c>).</summary>
    public required string AssemblyPath { get; init; }

    /// <summary>Loaded or refused.</summary>
    public required PluginStatus Status { get; init; }

    /// <summary>Why the plug-in was refused (naming the file), or <see langword="null"/>.</summary>
    public string? Error { get; init; }

    /// <summary>The sources the plug-in registered, in registration order.</summary>
    public IReadOnlyList<string> Sources { get; init; } = [];

    /// <summary>The plug-in assembly's own version, when it could be read.</summary>
    public Version? AssemblyVersion { get; init; }

    /// <summary>The version of Ingestion.Abstractions the plug-in was built against (its major is the contract version), when it could be read.</summary>
    public Version? ContractVersion { get; init; }

    /// <summary>How many times the plug-in was loaded (1, plus one per reload).</summary>
    public int Generation { get; init; }

    /// <summary>When the loaded generation was loaded.</summary>
    public DateTimeOffset? LoadedAt { get; init; }

    /// <summary>Why the last attempt to reload changed files failed (the previous generation stays in use), or <see langword="null"/>.</summary>
    public string? ReloadError { get; init; }

    /// <inheritdoc />
    public override string ToString() => Status == PluginStatus.Loaded
        ? $"{Name} {AssemblyVersion} (contract {ContractVersion?.Major}, generation {Generation}) from {AssemblyPath}: sources {string.Join(", ", Sources)}{(ReloadError is null ? string.Empty : $"; last reload failed: {ReloadError}")}"
        : $"{Name} refused: {Error}";
}
