using System.Diagnostics;

namespace Ingestion.Core.Tests.Plugins;

/// <summary>
/// Builds the fixture plug-ins of tests/plugins once per test run (an incremental `dotnet build`, a few seconds
/// when nothing changed) and lays out drop folders made of their build outputs.
/// </summary>
public sealed class PluginFixtures : IDisposable
{
    private readonly List<string> _temp = [];

    public PluginFixtures()
    {
        RepoRoot = FindRepoRoot();
        Configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        Build(Path.Combine(RepoRoot, "tests", "plugins", "PluginFixtures.slnx"), Configuration);
    }

    public string RepoRoot { get; }

    public string Configuration { get; }

    /// <summary>The build output folder of a fixture project.</summary>
    public string Output(string project) => Path.Combine(RepoRoot, "tests", "plugins", project, "bin", Configuration, "net10.0");

    /// <summary>Creates an empty drop folder, deleted when the tests end.</summary>
    public string NewDropFolder()
    {
        var dir = Path.Combine(Path.GetTempPath(), "ingestion-plugins-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        lock (_temp)
        {
            _temp.Add(dir);
        }

        return dir;
    }

    /// <summary>Copies a fixture's build output into <c>drop/&lt;name&gt;/</c> and returns that folder.</summary>
    public string Drop(string drop, string project, string? name = null)
    {
        var target = Path.Combine(drop, name ?? project);
        CopyFolder(Output(project), target);
        return target;
    }

    public static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from))
        {
            File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
        }
    }

    public void Dispose()
    {
        foreach (var dir in _temp)
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    public static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ingestion.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Ingestion.sln not found above {AppContext.BaseDirectory}.");
    }

    /// <summary>Runs `dotnet build` without a build server (a lingering server would hold the test's output pipes).</summary>
    public static void Build(string project, string configuration)
    {
        var log = Path.Combine(Path.GetTempPath(), $"ingestion-fixture-build-{Guid.NewGuid():N}.log");
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { "build", project, "-c", configuration, "-nologo", "-v", "q", "-nodeReuse:false", "-p:UseSharedCompilation=false", $"-flp:logfile={log};verbosity=minimal" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        // Generous: with the whole suite's test assemblies running beside it on two shared cores, this incremental
        // build (1-2 minutes alone) once took more than 8.
        if (!process.WaitForExit(TimeSpan.FromMinutes(15)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet build {project} took more than 15 minutes.");
        }

        if (process.ExitCode != 0)
        {
            var text = File.Exists(log) ? File.ReadAllText(log) : stdout.Result + stderr.Result;
            throw new InvalidOperationException($"dotnet build {project} failed ({process.ExitCode}):\n{text}");
        }

        File.Delete(log);
    }
}

[CollectionDefinition(Name)]
public sealed class PluginCollection : ICollectionFixture<PluginFixtures>
{
    public const string Name = "plugins";
}
