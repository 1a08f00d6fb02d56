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

    /// <summary>
    /// Writes a fresh console project into <paramref name="folder"/>, as <c>dotnet new console</c> makes it (implicit usings,
    /// nullable): no repository props, its own nuget.config adding the packed folder to the machine's sources.
    /// </summary>
    /// <param name="folder">The project folder.</param>
    /// <param name="name">The project (and assembly) name.</param>
    /// <param name="packages">Package name to version.</param>
    /// <param name="warningsAsErrors">Treat warnings as errors.</param>
    public void WriteConsoleProject(string folder, string name, IReadOnlyDictionary<string, string> packages, bool warningsAsErrors = false)
    {
        File.WriteAllText(Path.Combine(folder, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="packed" value="{Feed}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(folder, "Directory.Build.props"), "<Project />");
        File.WriteAllText(Path.Combine(folder, "Directory.Packages.props"), "<Project><PropertyGroup><ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup></Project>");
        var references = string.Concat(packages.Select(p => $"\n    <PackageReference Include=\"{p.Key}\" Version=\"{p.Value}\" />"));
        File.WriteAllText(Path.Combine(folder, name + ".csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <TreatWarningsAsErrors>{(warningsAsErrors ? "true" : "false")}</TreatWarningsAsErrors>
              </PropertyGroup>
              <ItemGroup>{references}
              </ItemGroup>
            </Project>
            """);
    }

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
