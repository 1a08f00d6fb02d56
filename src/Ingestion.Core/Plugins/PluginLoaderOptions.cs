namespace Ingestion.Plugins;

/// <summary>
/// How plug-ins are loaded from a drop folder, bound from <c>Ingestion:Plugins</c>.
/// The folder holds one subfolder per plug-in: <c>&lt;folder&gt;/&lt;name&gt;/&lt;name&gt;.dll</c> with its
/// <c>.deps.json</c> and private dependencies.
/// </summary>
public sealed class PluginLoaderOptions
{
    /// <summary>The configuration section under <c>Ingestion</c>.</summary>
    public const string SectionName = "Plugins";

    /// <summary>The plug-in folder; a relative path is relative to the host's base directory (<see cref="AppContext.BaseDirectory"/>).</summary>
    public string? Path { get; set; }

    /// <summary>
    /// Whether a plug-in whose files changed is unloaded and loaded again when one of its sources starts a run
    /// and no other run of it is in progress (never during a run). Default <see langword="true"/>.
    /// </summary>
    public bool ReloadOnChange { get; set; } = true;

    /// <summary>
    /// Names of further assemblies that always resolve to the host's copy, in addition to the contract
    /// (Ingestion.Abstractions and the Microsoft.Extensions abstractions it exposes, and Microsoft.Extensions.Options).
    /// Share an assembly only when its types cross the boundary between host and plug-in.
    /// </summary>
    public IList<string> SharedAssemblies { get; } = new List<string>();

    /// <summary>The clock used for the load times in the listing.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
