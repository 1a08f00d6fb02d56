using Ingestion.Postgres.Sinks;

namespace Ingestion.Postgres.Tests.Sinks;

public sealed class PostgresSinkOptionsTests
{
    [Fact]
    public void The_defaults_are_valid_and_make_first_loads_commit_asynchronously_and_flush_early()
    {
        var options = new PostgresSinkOptions();

        Assert.Empty(options.Validate());
        Assert.True(options.AsynchronousFirstLoadCommits);
        Assert.False(options.AsynchronousBatchCommits);
        Assert.Equal(2048, options.FirstLoadFlushAfterKilobytes);
    }

    [Theory]
    [InlineData(-1, "Ingestion:Postgres:Sink:FirstLoadFlushAfterKilobytes must be between 0 and 2048, the server's limit for backend_flush_after (was -1).")]
    [InlineData(2049, "Ingestion:Postgres:Sink:FirstLoadFlushAfterKilobytes must be between 0 and 2048, the server's limit for backend_flush_after (was 2049).")]
    public void A_flush_size_the_server_refuses_is_named(int kilobytes, string expected)
    {
        Assert.Equal([expected], new PostgresSinkOptions { FirstLoadFlushAfterKilobytes = kilobytes }.Validate());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(2048)]
    public void A_flush_size_within_the_server_s_range_is_accepted(int kilobytes)
    {
        Assert.Empty(new PostgresSinkOptions { FirstLoadFlushAfterKilobytes = kilobytes }.Validate());
    }
}
