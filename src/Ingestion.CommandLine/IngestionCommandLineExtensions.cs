using System.CommandLine;
using Ingestion.CommandLine.Commands;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Ingestion.CommandLine;

/// <summary>Runs the Ingestion command line over a built host.</summary>
public static class IngestionCommandLineExtensions
{
    /// <summary>
    /// Parses <paramref name="args"/> and runs the command: <c>run</c>, <c>sources</c>, <c>jobs</c>, <c>job</c>,
    /// <c>state</c>, <c>schedules</c>, <c>schedule-runs</c>, <c>queue</c>, <c>plugins</c>, <c>serve</c>, and the
    /// host's own commands. Arguments of the form <c>--Section:Key=value</c> are configuration overrides for the
    /// host and are left out of parsing. Never throws for a command's failure: it is written to standard error
    /// and turned into an exit code (<see cref="ExitCodes"/>).
    /// </summary>
    /// <param name="host">The built host (not started; <c>run</c> and <c>serve</c> start and stop it).</param>
    /// <param name="args">The command-line arguments.</param>
    /// <param name="configure">Adjusts output, terminal detection and host commands.</param>
    /// <param name="cancellationToken">Stops the command (Ctrl+C is handled too).</param>
    /// <returns>The process exit code.</returns>
    public static async Task<int> RunIngestionCommandLineAsync(this IHost host, string[] args, Action<IngestionCommandLineOptions>? configure = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(args);
        var options = new IngestionCommandLineOptions();
        configure?.Invoke(options);
        var output = options.Output ?? Console.Out;
        var error = options.Error ?? Console.Error;
        var context = new IngestionCommandContext(host, output, error, options.IsTerminal ?? !Console.IsOutputRedirected);
        var root = BuildRoot(context, options);
        var parse = root.Parse(args.Where(a => !IsConfigurationOverride(a)).ToArray());
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                await error.WriteLineAsync(e.Message).ConfigureAwait(false);
            }

            await error.WriteLineAsync("Run with --help for the commands and their options.").ConfigureAwait(false);
            return ExitCodes.BadArguments;
        }

        try
        {
            return await parse.InvokeAsync(new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false }, cancellationToken).ConfigureAwait(false);
        }
        catch (CommandLineException e)
        {
            await error.WriteLineAsync(e.Message).ConfigureAwait(false);
            return e.ExitCode;
        }
        catch (OptionsValidationException e)
        {
            await error.WriteLineAsync("Invalid configuration:").ConfigureAwait(false);
            foreach (var failure in e.Failures)
            {
                await error.WriteLineAsync($"  - {failure}").ConfigureAwait(false);
            }

            return ExitCodes.BadArguments;
        }
        catch (ArgumentException e)
        {
            await error.WriteLineAsync(e.Message).ConfigureAwait(false);
            return ExitCodes.BadArguments;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await error.WriteLineAsync("Cancelled.").ConfigureAwait(false);
            return ExitCodes.Failed;
        }
        catch (InvalidOperationException e)
        {
            await error.WriteLineAsync(e.Message).ConfigureAwait(false);
            return ExitCodes.Failed;
        }
    }

    /// <summary>Adds a command of the host to the Ingestion command line (created when the command line runs).</summary>
    /// <param name="services">The host's services.</param>
    /// <param name="create">Creates the command from the command context.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddIngestionCommand(this IServiceCollection services, Func<IngestionCommandContext, Command> create)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(create);
        services.AddSingleton(new IngestionCommandRegistration(create));
        return services;
    }

    /// <summary>Whether an argument is a configuration override (<c>--Section:Key=value</c>) for the host rather than an option.</summary>
    /// <param name="argument">The argument.</param>
    /// <returns><see langword="true"/> for an override.</returns>
    public static bool IsConfigurationOverride(string argument)
    {
        ArgumentNullException.ThrowIfNull(argument);
        var eq = argument.IndexOf('=', StringComparison.Ordinal);
        return argument.StartsWith("--", StringComparison.Ordinal) && eq > 0 && argument.AsSpan(0, eq).Contains(':');
    }

    private static RootCommand BuildRoot(IngestionCommandContext context, IngestionCommandLineOptions options)
    {
        var root = new RootCommand(options.Description)
        {
            RunCommandFactory.Create(context),
            InspectCommands.Sources(context),
            InspectCommands.Jobs(context),
            InspectCommands.Job(context),
            StateCommandFactory.Create(context),
            ScheduleCommands.Schedules(context),
            ScheduleCommands.Runs(context),
            QueueCommands.Create(context),
            InspectCommands.Plugins(context),
            ServeCommandFactory.Create(context),
        };
        var hostCommands = context.Services.GetServices<IngestionCommandRegistration>().Select(r => r.Create).Concat(options.Commands);
        foreach (var create in hostCommands)
        {
            var command = create(context);
            if (root.Subcommands.Any(c => c.Name == command.Name))
            {
                throw new InvalidOperationException($"The host command '{command.Name}' has the name of a built-in command; rename it.");
            }

            root.Subcommands.Add(command);
        }

        return root;
    }
}
