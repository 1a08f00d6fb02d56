using System.Collections.Concurrent;
using System.Globalization;
using Ingestion.Running;
using Spectre.Console;

namespace Ingestion.CommandLine.Output;

/// <summary>
/// Shows the progress of running sources: in a terminal, one live line per source (read, written, rejected, rows/s,
/// percent and ETA when the source knows its size); otherwise a plain <c>progress</c> line per source at most once a second.
/// </summary>
internal sealed class RunProgressDisplay(IngestionCommandContext context, TimeProvider time) : IProgress<IngestionProgress>
{
    private static readonly TimeSpan PlainInterval = TimeSpan.FromSeconds(1);
    private readonly ConcurrentDictionary<string, IngestionProgress> _latest = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _printed = new(StringComparer.Ordinal);

    public void Report(IngestionProgress value)
    {
        _latest[value.SourceName] = value;
        if (context.IsTerminal)
        {
            return;
        }

        var now = time.GetUtcNow();
        if (_printed.TryGetValue(value.SourceName, out var last) && now - last < PlainInterval)
        {
            return;
        }

        _printed[value.SourceName] = now;
        Tables.Line(
            context,
            "progress",
            ("source", value.SourceName),
            ("read", value.RecordsRead),
            ("written", value.RecordsWritten),
            ("rejected", value.RecordsRejected),
            ("rows_per_s", Math.Round(value.RecordsPerSecond, 1)),
            ("percent", value.Fraction is { } f ? Math.Round(f * 100, 1) : null),
            ("eta_s", value.EstimatedRemaining is { } eta ? Math.Round(eta.TotalSeconds) : null));
    }

    /// <summary>Runs <paramref name="work"/>, refreshing the live lines while it goes on (terminal only).</summary>
    public async Task<T> ShowWhileAsync<T>(IReadOnlyCollection<string> sources, Func<IReadOnlyList<Operations.ActiveRun>> active, Task<T> work)
    {
        if (!context.IsTerminal)
        {
            return await work.ConfigureAwait(false);
        }

        var table = new Table { Border = TableBorder.Simple };
        foreach (var h in new[] { "source", "state", "read", "written", "rejected", "rows/s", "done", "ETA" })
        {
            table.AddColumn(h);
        }

        await context.Console.Live(table).StartAsync(async live =>
        {
            while (!work.IsCompleted)
            {
                Fill(table, sources, active());
                live.Refresh();
                await Task.WhenAny(work, Task.Delay(250)).ConfigureAwait(false);
            }

            Fill(table, sources, active());
            live.Refresh();
        }).ConfigureAwait(false);
        return await work.ConfigureAwait(false);
    }

    private void Fill(Table table, IReadOnlyCollection<string> sources, IReadOnlyList<Operations.ActiveRun> active)
    {
        table.Rows.Clear();
        foreach (var source in sources)
        {
            var running = active.Any(a => a.Source == source);
            var p = _latest.GetValueOrDefault(source);
            var state = running ? "[yellow]running[/]" : p is null ? "[grey]waiting[/]" : "[green]done[/]";
            table.AddRow(
                Markup.Escape(source),
                state,
                Tables.Number(p?.RecordsRead ?? 0),
                Tables.Number(p?.RecordsWritten ?? 0),
                p?.RecordsRejected > 0 ? $"[red]{p.RecordsRejected}[/]" : "0",
                p is null ? string.Empty : p.RecordsPerSecond.ToString("0", CultureInfo.InvariantCulture),
                p?.Fraction is { } f ? f.ToString("P0", CultureInfo.InvariantCulture) : string.Empty,
                p?.EstimatedRemaining is { } eta && running ? eta.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : string.Empty);
        }
    }
}
