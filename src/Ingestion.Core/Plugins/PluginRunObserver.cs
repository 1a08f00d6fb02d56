using Ingestion.Running;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Ingestion.Plugins;

/// <summary>
/// Tracks the runs of plug-in sources so that a plug-in is reloaded only between runs: when a run of one of
/// its sources starts and none is in progress, changed files are loaded as a new generation first.
/// </summary>
internal sealed class PluginRunObserver(PluginManager manager, IOptionsMonitorCache<SourceOptions> sourceOptions, ILoggerFactory? loggerFactory = null) : IIngestionObserver
{
    private readonly ILogger _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Ingestion.Plugins");

    public ValueTask OnRunStartedAsync(string sourceName, Guid runId, RunRequest request, CancellationToken cancellationToken)
    {
        if (manager.HandleOf(sourceName) is { } handle)
        {
            if (handle.BeginRun())
            {
                foreach (var name in handle.SourceNames)
                {
                    sourceOptions.TryRemove(name);
                }

                PluginLog.Reloaded(_logger, handle.Name, handle.MainPath, handle.Describe().Generation);
            }
            else if (handle.Describe().ReloadError is { } error)
            {
                PluginLog.ReloadFailed(_logger, handle.Name, error);
            }
        }

        return ValueTask.CompletedTask;
    }

    public ValueTask OnRunCompletedAsync(IngestionResult result, CancellationToken cancellationToken)
    {
        manager.HandleOf(result.SourceName)?.EndRun();
        return ValueTask.CompletedTask;
    }
}

/// <summary>Logs, when the host starts, which plug-ins were loaded and which were refused and why.</summary>
internal sealed class PluginStartupReporter(PluginManager manager, ILoggerFactory? loggerFactory = null) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger("Ingestion.Plugins");
        foreach (var plugin in manager.Plugins)
        {
            if (plugin.Status == PluginStatus.Loaded)
            {
                PluginLog.Loaded(logger, plugin.Name, plugin.AssemblyPath, string.Join(", ", plugin.Sources), plugin.ContractVersion?.Major ?? 0);
            }
            else
            {
                PluginLog.Refused(logger, plugin.Name, plugin.Error ?? "unknown");
            }
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

internal static partial class PluginLog
{
    [LoggerMessage(1100, LogLevel.Information, "Plug-in {Plugin} loaded from {Path}: sources {Sources} (contract {Contract})")]
    public static partial void Loaded(ILogger logger, string plugin, string path, string sources, int contract);

    [LoggerMessage(1101, LogLevel.Error, "Plug-in {Plugin} refused: {Error}")]
    public static partial void Refused(ILogger logger, string plugin, string error);

    [LoggerMessage(1102, LogLevel.Information, "Plug-in {Plugin} reloaded from {Path} (generation {Generation})")]
    public static partial void Reloaded(ILogger logger, string plugin, string path, int generation);

    [LoggerMessage(1103, LogLevel.Warning, "Plug-in {Plugin}: its changed files could not be loaded; the previous build stays in use: {Error}")]
    public static partial void ReloadFailed(ILogger logger, string plugin, string error);
}
