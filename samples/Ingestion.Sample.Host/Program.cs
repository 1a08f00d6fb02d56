using System.CommandLine;
using Ingestion.CommandLine;
using Ingestion.Postgres.Hosting;
using Ingestion.Sample.Host;
using Microsoft.Extensions.Options;

// No arguments: ingest every enabled sample source, as scripts/run-sample.sh expects.
var cliArgs = args.Length == 0 ? ["run"] : args;
try
{
    using var host = SampleHost.Build(cliArgs.Where(IngestionCommandLineExtensions.IsConfigurationOverride).ToArray());
    return await host.RunIngestionCommandLineAsync(cliArgs, o =>
    {
        o.Description = "The Ingestion sample host: the bundled sample sources, schedules, queue and plug-ins.";
        foreach (var command in SampleHost.Discover<ISampleCommand>())
        {
            o.Commands.Add(context => ToCommand(command, context));
        }
    });
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine("Invalid configuration:");
    foreach (var failure in e.Failures)
    {
        Console.Error.WriteLine($"  - {failure}");
    }

    return ExitCodes.BadArguments;
}
catch (PostgresUnreachableException e)
{
    // The message names Ingestion:Postgres:ConnectionString with its host and port, never the password.
    Console.Error.WriteLine(e.Message);
    return ExitCodes.BadArguments;
}

// A sample command becomes a host-added command: its arguments are handed over as they were typed.
static Command ToCommand(ISampleCommand sample, IngestionCommandContext context)
{
    var rest = new Argument<string[]>("ARGS") { Arity = ArgumentArity.ZeroOrMore, Description = "The command's arguments." };
    var command = new Command(sample.Name, sample.Description) { rest };
    command.TreatUnmatchedTokensAsErrors = false;
    command.SetAction((parse, ct) => sample.RunAsync(context.Host, [.. parse.GetValue(rest) ?? [], .. parse.UnmatchedTokens], ct));
    return command;
}
