using Ingestion.Stores;

namespace Ingestion.Core.Tests.Stores;

/// <summary>The abandoned-job sentence every job store writes, and the in-process store closing a job with it.</summary>
public class AbandonedJobTests
{
    [Fact]
    public void The_error_names_the_host_and_the_last_sign_of_life_in_utc_and_keeps_a_host_holding_a_placeholder()
    {
        var lastAlive = new DateTimeOffset(2026, 1, 2, 5, 4, 5, TimeSpan.FromHours(2));
        Assert.Equal(
            "Abandoned: the run on host \"web-1:42\" stopped without closing its job (last alive 2026-01-02 03:04:05Z); the counts are those of its committed batches.",
            AbandonedJob.Error("web-1:42", lastAlive));
        Assert.Contains("host \"odd %s host\" stopped", AbandonedJob.Error("odd %s host", lastAlive), StringComparison.Ordinal);
        Assert.Contains("(last alive 2026-01-02 03:04:05Z)", AbandonedJob.Error("odd %s host", lastAlive), StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => AbandonedJob.Error(null!, lastAlive));
    }

    [Fact]
    public async Task The_in_process_store_closes_a_running_job_of_the_source_with_that_error()
    {
        var store = new InMemoryImportJobStore();
        var started = new DateTimeOffset(2026, 1, 2, 3, 0, 0, TimeSpan.Zero);
        var job = new ImportJob { Id = Guid.NewGuid(), SourceName = "feed", Trigger = "manual", Mode = IngestionMode.Incremental, Host = "gone:7", StartedAt = started };
        await store.StartAsync(job, CancellationToken.None);

        var closed = Assert.Single(await store.CloseAbandonedAsync("feed", null, TimeSpan.FromMinutes(5), CancellationToken.None));
        Assert.Equal(IngestionStatus.Abandoned, closed.Status);
        Assert.Equal(AbandonedJob.Error("gone:7", started), closed.Error);
    }
}
