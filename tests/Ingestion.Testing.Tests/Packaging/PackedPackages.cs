namespace Ingestion.Testing.Tests.Packaging;

/// <summary>
/// The src projects packed once per test run (scripts/pack.sh, a unique version, a temporary folder source), shared
/// by the tests that build fresh projects against the packages: the packaging test and the documentation check.
/// </summary>
public sealed class PackedPackages : IAsyncLifetime
{
    private readonly string _work = Directory.CreateTempSubdirectory("ingestion-packed-").FullName;

    /// <summary>The repository root.</summary>
    public string Root { get; } = Processes.RepoRoot();

    /// <summary>The folder holding the packages (a local package source).</summary>
    public string Feed => Path.Combine(_work, "feed");

    /// <summary>The version every package was packed with.</summary>
    public string Version { get; } = $"0.1.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Guid.NewGuid().ToString("N")[..6]}";

    /// <summary>What pack.sh printed: the packages produced.</summary>
    public string Listing { get; private set; } = string.Empty;

    /// <summary>Writes a nuget.config into <paramref name="folder"/> that adds the packed folder to the machine's sources.</summary>
    /// <param name="folder">The project folder.</param>
    public void WriteNuGetConfig(string folder) => File.WriteAllText(Path.Combine(folder, "nuget.config"), $"""
        <?xml version="1.0" encoding="utf-8"?>
        <configuration>
          <packageSources>
            <add key="packed" value="{Feed}" />
          </packageSources>
        </configuration>
        """);

    /// <inheritdoc />
    public Task InitializeAsync()
    {
        Listing = Processes.Run("bash", Root, Path.Combine(Root, "scripts", "pack.sh"), Feed, Version);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task DisposeAsync()
    {
        try
        {
            Directory.Delete(_work, recursive: true);
        }
        catch (IOException)
        {
        }

        return Task.CompletedTask;
    }
}

/// <summary>The tests sharing one pack.</summary>
[CollectionDefinition(Name)]
public sealed class PackedPackagesCollection : ICollectionFixture<PackedPackages>
{
    /// <summary>The collection name.</summary>
    public const string Name = "packed packages";
}
