using System.IO.Compression;
using System.Xml.Linq;
using Ingestion.TestSupport;

namespace Ingestion.Testing.Tests.Packaging;

/// <summary>
/// Packs the src projects, then builds a fresh host project outside the repository that references the packed
/// packages from a local folder source (not project references), loads the sample plug-in from a drop folder,
/// and runs it into PostgreSQL.
/// </summary>
[Collection(PackedPackagesCollection.Name)]
public sealed class PackagingTests(PostgresDatabase database, PackedPackages packed) : IClassFixture<PostgresDatabase>
{
    [Fact]
    public async Task Packed_packages_install_into_a_fresh_host_that_loads_a_plugin_and_runs_it_into_postgres()
    {
        var root = packed.Root;
        var work = Directory.CreateTempSubdirectory("ingestion-packaging-").FullName;
        try
        {
            var version = packed.Version;
            var feed = packed.Feed;
            var listing = packed.Listing;

            // Every src project is packed with its symbols; each package has its README, XML docs, license and no registry URL.
            var packages = Directory.GetFiles(feed, "*.nupkg").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            foreach (var project in Directory.GetDirectories(Path.Combine(root, "src")).Where(d => Directory.GetFiles(d, "*.csproj").Length > 0).Select(Path.GetFileName))
            {
                Assert.Contains($"{project}.{version}.nupkg", packages);
                Assert.True(File.Exists(Path.Combine(feed, $"{project}.{version}.snupkg")), $"no symbols package for {project}: {listing}");
                CheckPackage(Path.Combine(feed, $"{project}.{version}.nupkg"), project!);
            }

            // The drop folder: the sample plug-in's build output, as a source author would ship it.
            var plugin = Path.Combine(root, "samples", "Ingestion.Sample.Plugin", "bin", "Release", "net10.0");
            if (!File.Exists(Path.Combine(plugin, "Ingestion.Sample.Plugin.dll")))
            {
                Processes.Run("dotnet", root, "build", Path.Combine(root, "samples", "Ingestion.Sample.Plugin"), "-c", "Release", "-nologo", "-v", "q", "-nodeReuse:false", "-p:UseSharedCompilation=false");
            }

            var drop = Path.Combine(work, "plugins", "Ingestion.Sample.Plugin");
            Directory.CreateDirectory(drop);
            foreach (var file in Directory.GetFiles(plugin))
            {
                File.Copy(file, Path.Combine(drop, Path.GetFileName(file)));
            }

            // A fresh host: its own nuget.config adds only the local folder; no project reference, no repo props.
            var host = Path.Combine(work, "host");
            Directory.CreateDirectory(host);
            packed.WriteConsoleProject(host, "FreshHost", new Dictionary<string, string>
            {
                ["Ingestion.Core"] = version,
                ["Ingestion.Postgres"] = version,
                ["Microsoft.Extensions.DependencyInjection"] = "10.0.14",
                ["Microsoft.Extensions.Configuration"] = "10.0.14",
            });
            File.WriteAllText(Path.Combine(host, "Program.cs"), """
                using Ingestion;
                using Ingestion.Hosting;
                using Ingestion.Plugins;
                using Ingestion.Postgres.Hosting;
                using Ingestion.Running;
                using Microsoft.Extensions.Configuration;
                using Microsoft.Extensions.DependencyInjection;

                var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
                {
                    ["Ingestion:Postgres:ConnectionString"] = args[1],
                    ["Ingestion:Sources:bike-counters:CreateTable"] = "true",
                }).Build();
                var services = new ServiceCollection();
                services.AddIngestion(config.GetSection("Ingestion")).UsePostgres().AddPluginsFrom(args[0]);
                await using var provider = services.BuildServiceProvider();
                provider.GetRequiredService<PluginManager>().WriteListing(Console.Out);
                var result = await provider.GetRequiredService<IIngestionRunner>().RunAsync("bike-counters", null, CancellationToken.None);
                Console.WriteLine($"RESULT {result}");
                return result.IsSuccess ? 0 : 1;
                """);
            Processes.Run("dotnet", host, "build", "-c", "Release", "-nologo", "-v", "q", "-nodeReuse:false", "-p:UseSharedCompilation=false");

            // The host resolved the packages from the local folder, not from the repository's projects.
            var assets = File.ReadAllText(Path.Combine(host, "obj", "project.assets.json"));
            Assert.Contains($"\"Ingestion.Core/{version}\"", assets, StringComparison.Ordinal);
            Assert.Contains($"\"Ingestion.Abstractions/{version}\"", assets, StringComparison.Ordinal);
            Assert.DoesNotContain("\"type\": \"project\"", assets, StringComparison.Ordinal);

            var output = Processes.Run("dotnet", host, Path.Combine(host, "bin", "Release", "net10.0", "FreshHost.dll"), Path.Combine(work, "plugins"), database.ConnectionString);
            Assert.Contains("1 loaded, 0 refused", output, StringComparison.Ordinal);
            Assert.Contains("sources bike-counters", output, StringComparison.Ordinal);
            Assert.Contains("RESULT bike-counters: PartiallySucceeded", output, StringComparison.Ordinal);
            var tables = await database.ScalarAsync<string>("select coalesce(string_agg(table_schema || '.' || table_name, ', '), '') from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema')");
            Assert.True(tables.Contains("public.bike_counts", StringComparison.Ordinal), $"no public.bike_counts among [{tables}]; host output:\n{output}");
            Assert.Equal(6L, await database.ScalarAsync<long>("select count(*) from public.bike_counts"));
            Assert.Equal(1204, await database.ScalarAsync<int>("select count from public.bike_counts where counter_id = 'c-001' and day = date '2026-11-01'"));
        }
        finally
        {
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static void CheckPackage(string nupkg, string project)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        var names = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Contains("README.md", names);
        Assert.Contains($"lib/net10.0/{project}.dll", names);
        Assert.Contains($"lib/net10.0/{project}.xml", names);
        using var nuspecStream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        var nuspec = XDocument.Load(nuspecStream);
        var ns = nuspec.Root!.Name.Namespace;
        var metadata = nuspec.Root.Element(ns + "metadata")!;
        Assert.Equal("MIT", metadata.Element(ns + "license")?.Value);
        Assert.Equal("expression", metadata.Element(ns + "license")?.Attribute("type")?.Value);
        Assert.Equal("README.md", metadata.Element(ns + "readme")?.Value);
        Assert.False(string.IsNullOrWhiteSpace(metadata.Element(ns + "description")?.Value), $"{project} has no description");
        Assert.Equal("git", metadata.Element(ns + "repository")?.Attribute("type")?.Value);
        // Repository metadata names no package registry (NuGet itself adds a licenseUrl for the license expression).
        Assert.DoesNotContain("nuget", metadata.Element(ns + "repository")!.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.Null(metadata.Element(ns + "projectUrl"));
    }
}
