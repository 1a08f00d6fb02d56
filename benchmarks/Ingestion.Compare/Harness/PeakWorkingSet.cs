using System.Diagnostics;

namespace Ingestion.Compare.Harness;

/// <summary>
/// Measures the process's peak working set over an interval. On Linux the kernel's high-water mark
/// (VmHWM, what <see cref="Process.PeakWorkingSet64"/> reads) is reset at the start by writing 5 to
/// <c>/proc/self/clear_refs</c>, so the peak is exact; elsewhere the working set is sampled every 10 ms.
/// </summary>
internal sealed class PeakWorkingSet : IDisposable
{
    private readonly bool _kernelReset;
    private readonly Timer _timer;
    private long _sampledPeak;

    private PeakWorkingSet()
    {
        _kernelReset = TryResetHighWaterMark();
        _sampledPeak = Environment.WorkingSet;
        _timer = new Timer(_ => Sample(), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(10));
    }

    public static PeakWorkingSet Start() => new();

    /// <summary>Stops measuring and returns the peak in bytes.</summary>
    /// <returns>The peak working set during the interval.</returns>
    public long Stop()
    {
        _timer.Dispose();
        Sample();
        var peak = Interlocked.Read(ref _sampledPeak);
        if (_kernelReset)
        {
            using var self = Process.GetCurrentProcess();
            peak = Math.Max(peak, self.PeakWorkingSet64);
        }

        return peak;
    }

    public void Dispose() => _timer.Dispose();

    private void Sample()
    {
        var now = Environment.WorkingSet;
        long seen;
        while (now > (seen = Interlocked.Read(ref _sampledPeak)))
        {
            if (Interlocked.CompareExchange(ref _sampledPeak, now, seen) == seen)
            {
                break;
            }
        }
    }

    private static bool TryResetHighWaterMark()
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
