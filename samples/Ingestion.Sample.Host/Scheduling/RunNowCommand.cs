using Ingestion.Scheduling;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Ingestion.Sample.Host.Scheduling;

/// <summary><c>run-now schedule</c>: runs a schedule now through the scheduler (claim, retries, history, notifications).</summary>
public sealed class RunNowCommand : ISampleCommand
{
    public const string CommandName = "run-now";

    public string Name => CommandName;

    public string Description => "run a schedule now through the scheduler (same claim, retries, history and notifications)";

    public async Task<int> RunAsync(IHost host, string[] args, CancellationToken cancellationToken)
    {
        var name = args.FirstOrDefault(a => !a.StartsWith("--", StringComparison.Ordinal));
        if (name is null)
        {
            Console.Error.WriteLine("usage: run-now <schedule>");
            return 2;
        }

        await host.StartAsync(cancellationToken);
        try
        {
            var outcome = await host.Services.GetRequiredService<IIngestionScheduler>().RunNowAsync(name, cancellationToken);
            Console.WriteLine($"{outcome.Schedule}: {outcome.Status} after {outcome.Attempts} attempt(s){(outcome.Result is { } r ? $", {r.Counts}" : string.Empty)}{(outcome.Error is { } e ? $", {e}" : string.Empty)}");
            return outcome.Status == ScheduleRunStatus.Succeeded ? 0 : 1;
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }
}
