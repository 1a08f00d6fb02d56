using Ingestion.Core.Tests.Running;
using Ingestion.Hosting;
using Ingestion.Notifications;
using Ingestion.Scheduling;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Ingestion.Core.Tests.Scheduling;

public class SchedulingStartupValidationTests
{
    private static ServiceProvider Build(params (string Key, string? Value)[] settings)
    {
        var values = new Dictionary<string, string?>
        {
            ["Ingestion:Scheduling:Schedules:daily:Source"] = "tickets",
            ["Ingestion:Scheduling:Schedules:daily:Cron"] = "0 4 * * *",
            ["Ingestion:Scheduling:Schedules:daily:TimeZone"] = "America/Toronto",
        };
        foreach (var (k, v) in settings)
        {
            values[k] = v;
        }

        var config = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection();
        services.AddIngestion(config.GetSection("Ingestion"))
            .AddSource("tickets", SchedulerHarness.Items(1))
            .AddScheduling()
            .AddNotifications();
        return services.BuildServiceProvider();
    }

    private static async Task<string> StartFailsAsync(params (string Key, string? Value)[] settings)
    {
        await using var sp = Build(settings);
        var e = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            foreach (var hosted in sp.GetServices<IHostedService>())
            {
                await hosted.StartAsync(CancellationToken.None);
            }
        });
        return string.Join("\n", e.Failures);
    }

    [Fact]
    public async Task A_valid_configuration_starts_and_lists_next_runs()
    {
        await using var sp = Build(("Ingestion:Scheduling:Schedules:weekend:Source", "tickets"), ("Ingestion:Scheduling:Schedules:weekend:Cron", "0 8,12,18 * * 0,6"), ("Ingestion:Scheduling:Schedules:weekend:TimeZone", "America/Toronto"));
        IngestionStartupValidator.Validate(sp);
        var next = sp.GetRequiredService<IIngestionScheduler>().GetNextRuns(new DateTimeOffset(2026, 6, 12, 12, 0, 0, TimeSpan.Zero), 3);
        Assert.Equal(["daily", "weekend"], next.Select(n => n.Schedule));
        Assert.Equal(new DateTimeOffset(2026, 6, 13, 8, 0, 0, TimeSpan.Zero), next[0].Slots[0]);
        Assert.Equal(new DateTimeOffset(2026, 6, 13, 12, 0, 0, TimeSpan.Zero), next[1].Slots[0]);
        Assert.True(next[0].Active);
    }

    [Theory]
    [InlineData("Ingestion:Scheduling:Schedules:daily:Cron", "0 4 * *", "Ingestion:Scheduling:Schedules:daily:Cron: cron expression '0 4 * *' has 4 field(s)")]
    [InlineData("Ingestion:Scheduling:Schedules:daily:Cron", "0 99 * * *", "Ingestion:Scheduling:Schedules:daily:Cron: cron expression '0 99 * * *' is invalid: hour value 99")]
    [InlineData("Ingestion:Scheduling:Schedules:daily:TimeZone", "America/Montreal-ish", "Ingestion:Scheduling:Schedules:daily:TimeZone: time zone 'America/Montreal-ish' is unknown")]
    [InlineData("Ingestion:Scheduling:Schedules:daily:Source", "nope", "Ingestion:Scheduling:Schedules:daily:Source 'nope' is not a registered source (registered: tickets)")]
    [InlineData("Ingestion:Scheduling:Schedules:daily:RetryDelay", "00:00:00", "Ingestion:Scheduling:Schedules:daily:RetryDelay must be positive")]
    [InlineData("Ingestion:Scheduling:Schedules:daily:RetryDelay", "-00:05:00", "Ingestion:Scheduling:Schedules:daily:RetryDelay must be positive")]
    [InlineData("Ingestion:Scheduling:Schedules:daily:RetryAttempts", "0", "Ingestion:Scheduling:Schedules:daily:RetryAttempts must be at least 1")]
    [InlineData("Ingestion:Scheduling:ClaimLease", "-00:00:01", "Ingestion:Scheduling:ClaimLease must be positive")]
    [InlineData("Ingestion:Scheduling:Schedules:daily:Misfire", "Sometimes", "Ingestion:Scheduling:Schedules:daily:Misfire")]
    [InlineData("Ingestion:Scheduling:Schedules:daily:RetryAttempts", "three", "Ingestion:Scheduling:Schedules:daily:RetryAttempts")]
    [InlineData("Ingestion:Notifications:Webhooks:slack:Url", "file:///etc/passwd", "Ingestion:Notifications:Webhooks:slack:Url 'file:///etc/passwd' is not an absolute http(s) URL")]
    public async Task Bad_settings_fail_at_start_naming_the_setting(string key, string value, string expected)
    {
        var failures = await StartFailsAsync((key, value));
        Assert.Contains(expected, failures, StringComparison.Ordinal);
    }

    [Fact]
    public void The_scheduler_refuses_to_be_created_with_bad_settings()
    {
        using var sp = Build(("Ingestion:Scheduling:Schedules:daily:Cron", "every day"));
        var e = Assert.Throws<OptionsValidationException>(() => sp.GetRequiredService<IngestionScheduler>());
        Assert.Contains("Ingestion:Scheduling:Schedules:daily:Cron", e.Message, StringComparison.Ordinal);
    }
}
