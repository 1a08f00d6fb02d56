using System.Diagnostics;
using System.Globalization;

namespace Ingestion.Compare.Harness;

/// <summary>
/// CPU time spent during an interval: by this process (the client: source, runner, sink writer, Npgsql) and by the
/// whole machine (from <c>/proc/stat</c>; the difference is PostgreSQL plus anything else running). On a 2-core
/// machine where client and server compete for the cores, it tells which side a case spends its time on.
/// </summary>
internal sealed class CpuMeter
{
    private readonly TimeSpan _client;
    private readonly long? _machineTicks;

    private CpuMeter()
    {
        using var self = Process.GetCurrentProcess();
        _client = self.TotalProcessorTime;
        _machineTicks = MachineBusyTicks();
    }

    public static CpuMeter Start() => new();

    /// <summary>Ends the interval: "client 5.1 s, rest of machine 6.0 s" (the machine part only on Linux).</summary>
    /// <returns>The summary.</returns>
    public string Stop()
    {
        using var self = Process.GetCurrentProcess();
        var client = (self.TotalProcessorTime - _client).TotalSeconds;
        var text = string.Create(CultureInfo.InvariantCulture, $"client {client:0.0} s");
        if (_machineTicks is { } before && MachineBusyTicks() is { } after)
        {
            // USER_HZ is 100 on Linux.
            var machine = (after - before) / 100.0;
            text += string.Create(CultureInfo.InvariantCulture, $", rest of machine {Math.Max(0, machine - client):0.0} s");
        }

        return text;
    }

    private static long? MachineBusyTicks()
    {
        try
        {
            if (!File.Exists("/proc/stat"))
            {
                return null;
            }

            // cpu  user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            long busy = 0;
            for (var i = 1; i < fields.Length && i <= 8; i++)
            {
                if (i is 4 or 5)
                {
                    continue;
                }

                busy += long.Parse(fields[i], CultureInfo.InvariantCulture);
            }

            return busy;
        }
        catch (Exception e) when (e is IOException or FormatException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
