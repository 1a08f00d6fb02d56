namespace Ingestion.CommandLine;

/// <summary>The process exit codes of the Ingestion command line (docs/operations.md).</summary>
public static class ExitCodes
{
    /// <summary>Every source run succeeded (partially succeeded within its error budget, or not modified), or the command did its job.</summary>
    public const int Success = 0;

    /// <summary>A source run failed (an error, a rejected-record budget exceeded, a timeout) or was cancelled.</summary>
    public const int Failed = 1;

    /// <summary>Bad arguments (unknown command, option or source) or invalid configuration; nothing ran.</summary>
    public const int BadArguments = 2;

    /// <summary>Another run (this host or another) held a source's run lock, so that source did not run; none failed.</summary>
    public const int Locked = 3;

    /// <summary>The exit code of a set of run results: failure first, then a lock held elsewhere, else success.</summary>
    /// <param name="results">The results.</param>
    /// <returns>The exit code.</returns>
    public static int Of(IEnumerable<IngestionResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var list = results.ToList();
        return list.Any(r => r.Status is IngestionStatus.Failed or IngestionStatus.Cancelled) ? Failed
            : list.Any(r => r.Status == IngestionStatus.AlreadyRunning) ? Locked
            : Success;
    }
}

/// <summary>A command failed in a way that maps to an exit code, with a message for the operator.</summary>
public sealed class CommandLineException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="exitCode">The exit code (<see cref="ExitCodes"/>).</param>
    /// <param name="message">What went wrong, naming what to fix.</param>
    public CommandLineException(int exitCode, string message)
        : base(message) => ExitCode = exitCode;

    /// <summary>Creates an exception with exit code <see cref="ExitCodes.Failed"/>.</summary>
    public CommandLineException()
        : this(ExitCodes.Failed, "The command failed.")
    {
    }

    /// <summary>Creates an exception with exit code <see cref="ExitCodes.Failed"/>.</summary>
    /// <param name="message">The message.</param>
    public CommandLineException(string message)
        : this(ExitCodes.Failed, message)
    {
    }

    /// <summary>Creates an exception with exit code <see cref="ExitCodes.Failed"/>.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public CommandLineException(string message, Exception innerException)
        : base(message, innerException) => ExitCode = ExitCodes.Failed;

    /// <summary>The exit code.</summary>
    public int ExitCode { get; }
}
