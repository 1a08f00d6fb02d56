using Microsoft.Extensions.Configuration;

namespace Ingestion.Hosting;

/// <summary>
/// Where a source's settings are read: <c>Ingestion:Sources:&lt;name&gt;</c>, then, for a name holding <c>-</c> or
/// <c>.</c> (characters a shell refuses in a variable name), <c>Ingestion:Sources:&lt;name with _&gt;</c>, so that
/// <c>Ingestion__Sources__meter_readings__Table=readings</c> in the environment sets the <c>Table</c> of source
/// <c>meter-readings</c>. Values of the second section win over the first (environment variables usually override
/// <c>appsettings.json</c>). Two sources whose names differ only there cannot both be registered.
/// </summary>
public static class SourceConfiguration
{
    /// <summary>The name under which a source's settings can also be given: <c>-</c> and <c>.</c> become <c>_</c>.</summary>
    /// <param name="sourceName">The source name.</param>
    /// <returns>The name usable in an environment variable (the name itself when it has neither character).</returns>
    public static string EnvironmentName(string sourceName)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        return sourceName.Replace('-', '_').Replace('.', '_');
    }

    /// <summary>
    /// The configuration sections holding a source's settings, in binding order: <c>Sources:&lt;name&gt;[:path]</c>,
    /// then <c>Sources:&lt;environment name&gt;[:path]</c> when the names differ.
    /// </summary>
    /// <param name="ingestion">The <c>Ingestion</c> section.</param>
    /// <param name="sourceName">The source name.</param>
    /// <param name="path">A sub-path inside the source's settings (<c>Sync:Deletion</c>), or <see langword="null"/>.</param>
    /// <returns>One or two sections.</returns>
    public static IReadOnlyList<IConfigurationSection> Sections(IConfiguration ingestion, string sourceName, string? path = null)
    {
        ArgumentNullException.ThrowIfNull(ingestion);
        ArgumentNullException.ThrowIfNull(sourceName);
        var suffix = string.IsNullOrEmpty(path) ? string.Empty : ":" + path;
        var alias = EnvironmentName(sourceName);
        var first = ingestion.GetSection($"Sources:{sourceName}{suffix}");
        return string.Equals(alias, sourceName, StringComparison.Ordinal) ? [first] : [first, ingestion.GetSection($"Sources:{alias}{suffix}")];
    }

    /// <summary>Binds a source's settings from every section of <see cref="Sections"/>, in order.</summary>
    /// <param name="ingestion">The <c>Ingestion</c> section.</param>
    /// <param name="sourceName">The source name.</param>
    /// <param name="instance">The settings object.</param>
    /// <param name="path">A sub-path inside the source's settings, or <see langword="null"/>.</param>
    public static void Bind(IConfiguration ingestion, string sourceName, object instance, string? path = null)
    {
        ArgumentNullException.ThrowIfNull(instance);
        foreach (var section in Sections(ingestion, sourceName, path))
        {
            section.Bind(instance);
        }
    }
}
