using System.Diagnostics;

namespace Ingestion.Testing.Tests.Packaging;

/// <summary>Runs the dotnet CLI and other tools from tests, outside the test host's MSBuild environment.</summary>
internal static class Processes
{
    /// <summary>The repository root (the folder holding Ingestion.sln), found upwards from the test binaries.</summary>
    /// <returns>The root folder.</returns>
    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ingestion.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Ingestion.sln not found.");
    }

    /// <summary>Runs a process and asserts it exits 0.</summary>
    /// <returns>Its standard output and error.</returns>
    public static string Run(string fileName, string workingDirectory, params string[] args) =>
        Run(fileName, workingDirectory, new Dictionary<string, string>(), args);

    /// <summary>Runs a process with extra environment variables and asserts it exits 0.</summary>
    /// <returns>Its standard output and error.</returns>
    public static string Run(string fileName, string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var (exitCode, output) = RunAny(fileName, workingDirectory, environment, args);
        Assert.True(exitCode == 0, $"{fileName} {string.Join(' ', args)} failed ({exitCode}):\n{output}");
        return output;
    }

    /// <summary>Runs a process (at most 10 minutes) with extra environment variables.</summary>
    /// <returns>Its exit code, and its standard output then standard error.</returns>
    public static (int ExitCode, string Output) RunAny(string fileName, string workingDirectory, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            psi.Environment.Remove(key);
        }

        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment)
        {
            psi.Environment[key] = value;
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', args)} took more than 10 minutes.");
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
