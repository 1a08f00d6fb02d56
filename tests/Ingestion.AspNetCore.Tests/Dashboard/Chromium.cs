using System.Diagnostics;
using Microsoft.Playwright;

namespace Ingestion.AspNetCore.Tests.Dashboard;

/// <summary>
/// Debian's <c>chromium</c> driven by Playwright through its executable path (Playwright never downloads a browser here).
/// When the browser is missing, the test installs the package with apt-get (as root); where it cannot, the test is skipped with the reason.
/// </summary>
public static class Chromium
{
    public const string ExecutablePath = "/usr/bin/chromium";

    private static readonly string[] Arguments =
    [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ];

    private static readonly SemaphoreSlim InstallGate = new(1, 1);

    /// <summary>Why the Chromium tests cannot run on this machine, or <see langword="null"/> when the browser is there or can be installed.</summary>
    public static string? SkipReason
    {
        get
        {
            if (File.Exists(ExecutablePath))
            {
                return null;
            }

            if (!OperatingSystem.IsLinux() || !File.Exists("/usr/bin/apt-get"))
            {
                return $"{ExecutablePath} is missing and this machine has no apt-get to install Debian's chromium package.";
            }

            return Environment.UserName == "root" ? null : $"{ExecutablePath} is missing and installing Debian's chromium package needs root (the tests run as '{Environment.UserName}').";
        }
    }

    /// <summary>Installs the chromium package when the browser is missing (apt-get update, then install).</summary>
    public static async Task EnsureInstalledAsync()
    {
        await InstallGate.WaitAsync();
        try
        {
            if (File.Exists(ExecutablePath))
            {
                return;
            }

            await AptGetAsync("update");
            await AptGetAsync("install -y --no-install-recommends chromium");
            if (!File.Exists(ExecutablePath))
            {
                throw new InvalidOperationException($"apt-get installed chromium but {ExecutablePath} is still missing.");
            }
        }
        finally
        {
            InstallGate.Release();
        }
    }

    /// <summary>Starts Playwright and the headless browser.</summary>
    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        await EnsureInstalledAsync();
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = Arguments,
            Timeout = 30_000,
        });
        return (playwright, browser);
    }

    private static async Task AptGetAsync(string arguments)
    {
        var start = new ProcessStartInfo("apt-get", arguments) { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("apt-get could not be started.");
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"apt-get {arguments} failed with exit code {process.ExitCode}: {await error}{await output}");
        }
    }
}

/// <summary>A fact that needs Chromium: skipped, with the reason, only where the browser is missing and cannot be installed.</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (Chromium.SkipReason is { } reason)
        {
            Skip = reason;
        }
    }
}
