namespace Ingestion.AspNetCore.Tests;

/// <summary>The system clock moved by an offset the test sets, so "later" needs no waiting.</summary>
public sealed class ShiftedTime : TimeProvider
{
    public TimeSpan Offset { get; set; }

    public override DateTimeOffset GetUtcNow() => base.GetUtcNow() + Offset;
}
