using System.CommandLine;

namespace Ingestion.CommandLine;

/// <summary>Settings of <see cref="IngestionCommandLineExtensions.RunIngestionCommandLineAsync"/>.</summary>
public sealed class IngestionCommandLineOptions
{
    /// <summary>Standard output; defaults to <see cref="Console.Out"/>.</summary>
    public TextWriter? Output { get; set; }

    /// <summary>Standard error; defaults to <see cref="Console.Error"/>.</summary>
    public TextWriter? Error { get; set; }

    /// <summary>Whether the output is a terminal; defaults to whether standard output is not redirected.</summary>
    public bool? IsTerminal { get; set; }

    /// <summary>The description of the root command shown by <c>--help</c>.</summary>
    public string Description { get; set; } = "Ingestion: run and inspect the sources, jobs, schedules and queues of this host.";

    /// <summary>Commands added by the host (besides those registered with <see cref="IngestionCommandLineExtensions.AddIngestionCommand"/>).</summary>
    public IList<Func<IngestionCommandContext, Command>> Commands { get; } = new List<Func<IngestionCommandContext, Command>>();
}

/// <summary>A host command registered in the container, created when the command line runs.</summary>
/// <param name="Create">Creates the command.</param>
public sealed record IngestionCommandRegistration(Func<IngestionCommandContext, Command> Create);

/// <summary>
/// Plugs into the <c>serve</c> command: called once the host started (the scheduler and queue workers run), for
/// example by the HTTP endpoints package to start listening and say where. Register implementations in the container.
/// </summary>
public interface IIngestionServeHook
{
    /// <summary>The host started serving.</summary>
    /// <param name="context">The command context (services, output).</param>
    /// <param name="cancellationToken">Cancelled when serving stops.</param>
    /// <returns>A task.</returns>
    Task OnServingAsync(IngestionCommandContext context, CancellationToken cancellationToken);
}
