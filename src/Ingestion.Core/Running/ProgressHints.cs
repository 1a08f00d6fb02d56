namespace Ingestion.Running;

/// <summary>The input-size hints of a run (<see cref="IngestionContext.ReportInputSize"/>), set by the source, read with each progress event.</summary>
internal sealed class ProgressHints
{
    private volatile Snapshot _current = new(null, null, null);

    public void Set(long? totalRecords, long? totalBytes, Func<long>? bytesRead) => _current = new(totalRecords, totalBytes, bytesRead);

    /// <summary>Adds the hints to a progress event.</summary>
    public IngestionProgress Apply(IngestionProgress progress)
    {
        var s = _current;
        long? read = null;
        if (s.BytesRead is { } f)
        {
            try
            {
                read = f();
            }
#pragma warning disable CA1031 // a progress hint must never fail a run
            catch (Exception)
#pragma warning restore CA1031
            {
                read = null;
            }
        }

        return progress with { TotalRecords = s.TotalRecords, TotalBytes = s.TotalBytes, BytesRead = read };
    }

    private sealed record Snapshot(long? TotalRecords, long? TotalBytes, Func<long>? BytesRead);
}
