using System.CommandLine;
using Ingestion.CommandLine.Output;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.CommandLine.Commands;

/// <summary><c>serve [--for SECONDS]</c>: starts the host (scheduler, queue workers, HTTP endpoints when registered) until Ctrl+C.</summary>
internal static class ServeCommandFactory
{
    public static Command Create(IngestionCommandContext context)
    {
        var duration = new Option<double?>("--for") { Description = "Stop by itself after this many seconds." };
        var command = new Command("serve", "Run the scheduler, the queue workers and the HTTP endpoints (when the host has them) until Ctrl+C.") { duration };
        command.SetAction(async (parse, ct) =>
        {
            await context.Host.StartAsync(ct).ConfigureAwait(false);
            using var serving = CancellationTokenSource.CreateLinkedTokenSource(ct);
            if (parse.GetValue(duration) is { } seconds)
            {
                serving.CancelAfter(TimeSpan.FromSeconds(seconds));
            }

            try
            {
                Tables.Line(context, "serving", ("sources", context.Services.GetRequiredService<Hosting.SourceCatalog>().Sources.Count));
                foreach (var hook in context.Services.GetServices<IIngestionServeHook>())
                {
                    await hook.OnServingAsync(context, serving.Token).ConfigureAwait(false);
                }

                await Task.Delay(Timeout.Infinite, serving.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (serving.IsCancellationRequested)
            {
                // Ctrl+C or --for: stop gracefully.
            }
            finally
            {
                await context.Host.StopAsync(CancellationToken.None).ConfigureAwait(false);
            }

            Tables.Line(context, "stopped");
            return ExitCodes.Success;
        });
        return command;
    }
}
