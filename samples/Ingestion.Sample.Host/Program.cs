using Ingestion.Postgres.Hosting;
using Ingestion.Sample.Host;
using Microsoft.Extensions.Options;

var commands = SampleHost.Discover<ISampleCommand>();
if (args.Length > 0 && args[0] is "help" or "--help" or "-h")
{
    Console.WriteLine("usage: Ingestion.Sample.Host [command] [args] [--Config:Key=value ...]");
    foreach (var c in commands.OrderBy(c => c.Name, StringComparer.Ordinal))
    {
        Console.WriteLine($"  {c.Name,-22} {c.Description}");
    }

    return 0;
}

// The longest command name matching the leading words wins ("plugins list" before "plugins").
var words = args.TakeWhile(a => !a.StartsWith("--", StringComparison.Ordinal)).ToArray();
var command = commands
    .Where(c => c.Name.Split(' ') is var parts && parts.Length <= words.Length && parts.SequenceEqual(words.Take(parts.Length)))
    .MaxBy(c => c.Name.Split(' ').Length)
    ?? (words.Length == 0 ? commands.Single(c => c.Name == "run") : null);
if (command is null)
{
    Console.Error.WriteLine($"Unknown command '{string.Join(' ', words)}'. Run with 'help' for the list.");
    return 2;
}

var rest = args.Skip(command.Name == "run" && words.Length == 0 ? 0 : command.Name.Split(' ').Length).ToArray();
using var cts = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    cts.Cancel();
};
try
{
    using var host = SampleHost.Build(rest.Where(a => a.StartsWith("--", StringComparison.Ordinal)).ToArray());
    return await command.RunAsync(host, rest, cts.Token);
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine("Invalid configuration:");
    foreach (var failure in e.Failures)
    {
        Console.Error.WriteLine($"  - {failure}");
    }

    return 3;
}
catch (PostgresUnreachableException e)
{
    // The message names Ingestion:Postgres:ConnectionString with its host and port, never the password.
    Console.Error.WriteLine(e.Message);
    return 4;
}
