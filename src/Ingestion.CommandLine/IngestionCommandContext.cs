using Microsoft.Extensions.Hosting;
using Spectre.Console;

namespace Ingestion.CommandLine;

/// <summary>What a command sees: the host, where to write, and whether the output is a terminal.</summary>
public sealed class IngestionCommandContext
{
    internal IngestionCommandContext(IHost host, TextWriter output, TextWriter error, bool isTerminal)
    {
        Host = host;
        Output = output;
        Error = error;
        IsTerminal = isTerminal;
        Console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = isTerminal ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = isTerminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = isTerminal ? InteractionSupport.Yes : InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
    }

    /// <summary>The built host (started only by the commands that need it: <c>run</c> and <c>serve</c>).</summary>
    public IHost Host { get; }

    /// <summary>The host's services.</summary>
    public IServiceProvider Services => Host.Services;

    /// <summary>Standard output.</summary>
    public TextWriter Output { get; }

    /// <summary>Standard error.</summary>
    public TextWriter Error { get; }

    /// <summary>Whether the output is a terminal: live progress and tables; otherwise plain parseable lines without escape codes.</summary>
    public bool IsTerminal { get; }

    /// <summary>Spectre.Console over <see cref="Output"/> (no escape codes when not a terminal).</summary>
    public IAnsiConsole Console { get; }
}
