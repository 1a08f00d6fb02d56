using Ingestion.Notifications;
using Ingestion.Postgres.Scheduling;
using Microsoft.Extensions.Configuration;

namespace Ingestion.Sample.Host.Scheduling;

/// <summary>
/// The scheduler (slots shared through PostgreSQL) and notifications, from <c>Ingestion:Scheduling</c> and
/// <c>Ingestion:Notifications</c> in appsettings.json. Registered only for the scheduling commands (and <c>sources</c>, which shows next runs), so that
/// <c>run</c> and the other one-shot commands never start scheduled runs.
/// </summary>
public sealed class SchedulingSampleFeature : ISampleFeature
{
    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory)
    {
        var command = Environment.GetCommandLineArgs().Skip(1).FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal));
        if (command is "serve" or "sources" or "schedules" or "schedule-runs" or RunNowCommand.CommandName)
        {
            ingestion.UsePostgresScheduling().AddNotifications();
        }
    }
}
