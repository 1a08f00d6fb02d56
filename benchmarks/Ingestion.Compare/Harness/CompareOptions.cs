using System.Globalization;

namespace Ingestion.Compare.Harness;

/// <summary>The command line of the comparison runner.</summary>
public sealed class CompareOptions
{
    /// <summary>The usage text.</summary>
    public const string Usage = """
        Usage: Ingestion.Compare [--rows N] [--cases a,b,c] [--ef-rows N] [--connection CS] [--list]
          --rows N         rows per case (default 1000000)
          --cases a,b,c    run only these cases (default: all; see --list); they run in registry order
          --ef-rows N      rows of efcore_insert (default: the smaller of --rows and 200000)
          --batch-size N   records per batch of our runner (default: the library's default)
          --repeat N       rounds (default 1): each round times every case once, in registry order; a
                           case's median time is printed and each run noted, a goal's ratio is the
                           median of the rounds' ratios (each round's ratio noted)
          --fillfactor N   fillfactor of the tables our sink creates (default: the library's 70)
          --arrival-order  our sink sends each batch in arrival order instead of key order
                           (PostgresSinkOptions.SendRowsInKeyOrder = false), to measure what the order buys
          --key-first      tables our sink creates get their primary key before the first load instead of
                           after it (PostgresSinkOptions.BuildKeyIndexAfterFirstLoad = false)
          --async-commits  our batch transactions commit without waiting for the disk
                           (PostgresSinkOptions.AsynchronousBatchCommits = true), to measure what it buys
          --sync-first-load
                           our first-load batches wait for the disk at each commit
                           (PostgresSinkOptions.AsynchronousFirstLoadCommits = false), to measure what the
                           default asynchronous first-load commits buy
          --first-load-flush-after KB
                           backend_flush_after of our first-load sessions
                           (PostgresSinkOptions.FirstLoadFlushAfterKilobytes; 0 leaves the server's), to
                           measure what early writeback buys
          --key-index-max-rows N
                           keys our sink remembers per table (PostgresSinkOptions.KeyIndexMaxRows; default
                           the library's), to measure what remembering keys costs a first load
          --connection CS  the PostgreSQL server (default: env INGESTION_TEST_PG, then INGESTION_PG);
                           a throwaway database is created on it and dropped at the end
          --list           print the case names and exit
        """;

    /// <summary>Rows per case.</summary>
    public long Rows { get; private set; } = 1_000_000;

    /// <summary>The cases asked for, or <see langword="null"/> for all.</summary>
    public IReadOnlyList<string>? Cases { get; private set; }

    /// <summary>Rows of the EF Core case.</summary>
    public long EfRows => ExplicitEfRows ?? Math.Min(Rows, 200_000);

    /// <summary>The <c>--ef-rows</c> value, when given.</summary>
    public long? ExplicitEfRows { get; private set; }

    /// <summary>The batch size of our runner's cases, when given (<c>--batch-size</c>).</summary>
    public int? BatchSize { get; private set; }

    /// <summary>Rounds of timed runs (<c>--repeat</c>): every case runs once per round; medians stand for the cases and the goals.</summary>
    public int Repeat { get; private set; } = 1;

    /// <summary>The fillfactor of the tables our sink creates (<c>--fillfactor</c>), when given.</summary>
    public int? FillFactor { get; private set; }

    /// <summary>Whether our sink sends batches in arrival order (<c>--arrival-order</c>) instead of key order.</summary>
    public bool ArrivalOrder { get; private set; }

    /// <summary>Whether tables our sink creates get their primary key before the first load (<c>--key-first</c>) instead of after it.</summary>
    public bool KeyFirst { get; private set; }

    /// <summary>Whether our batch transactions commit without waiting for the disk (<c>--async-commits</c>).</summary>
    public bool AsyncCommits { get; private set; }

    /// <summary>Whether our first-load batches wait for the disk at each commit (<c>--sync-first-load</c>).</summary>
    public bool SyncFirstLoad { get; private set; }

    /// <summary>The <c>--first-load-flush-after</c> value of our sink, in kB, when given.</summary>
    public int? FirstLoadFlushAfter { get; private set; }

    /// <summary>The <c>--key-index-max-rows</c> value of our sink, when given.</summary>
    public int? KeyIndexMaxRows { get; private set; }

    /// <summary>The server connection string, when given on the command line.</summary>
    public string? Connection { get; private set; }

    /// <summary>Whether to list the cases and exit.</summary>
    public bool List { get; private set; }

    /// <summary>Whether to print the usage and exit.</summary>
    public bool Help { get; private set; }

    /// <summary>A copy of these options with at most <paramref name="rows"/> rows (for warm-up passes).</summary>
    /// <param name="rows">The row cap.</param>
    /// <returns>The copy.</returns>
    public CompareOptions CappedTo(long rows) => new()
    {
        Rows = Math.Min(Rows, rows),
        ExplicitEfRows = Math.Min(EfRows, rows),
        Cases = Cases,
        BatchSize = BatchSize,
        Connection = Connection,
        Repeat = 1,
        FillFactor = FillFactor,
        ArrivalOrder = ArrivalOrder,
        KeyFirst = KeyFirst,
        AsyncCommits = AsyncCommits,
        SyncFirstLoad = SyncFirstLoad,
        FirstLoadFlushAfter = FirstLoadFlushAfter,
        KeyIndexMaxRows = KeyIndexMaxRows,
    };

    /// <summary>Parses the command line.</summary>
    /// <param name="args">The arguments.</param>
    /// <returns>The options.</returns>
    /// <exception cref="ArgumentException">An argument is unknown, lacks its value, or has a bad value; the message names it.</exception>
    public static CompareOptions Parse(IReadOnlyList<string> args)
    {
        var o = new CompareOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value()
            {
                if (i + 1 >= args.Count || args[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    throw new ArgumentException($"{arg} needs a value.");
                }

                return args[++i];
            }

            switch (arg)
            {
                case "--rows":
                    o.Rows = PositiveCount(arg, Value());
                    break;
                case "--ef-rows":
                    o.ExplicitEfRows = PositiveCount(arg, Value());
                    break;
                case "--batch-size":
                    var size = PositiveCount(arg, Value());
                    o.BatchSize = size <= int.MaxValue ? (int)size : throw new ArgumentException($"--batch-size is too large (was {size}).");
                    break;
                case "--repeat":
                    var repeat = PositiveCount(arg, Value());
                    o.Repeat = repeat <= 20 ? (int)repeat : throw new ArgumentException($"--repeat must be at most 20 (was {repeat}).");
                    break;
                case "--fillfactor":
                    var fill = PositiveCount(arg, Value());
                    o.FillFactor = fill is >= 10 and <= 100 ? (int)fill : throw new ArgumentException($"--fillfactor must be between 10 and 100 (was {fill}).");
                    break;
                case "--key-first":
                    o.KeyFirst = true;
                    break;
                case "--arrival-order":
                    o.ArrivalOrder = true;
                    break;
                case "--key-index-max-rows":
                    var keys = PositiveCount(arg, Value());
                    o.KeyIndexMaxRows = keys <= int.MaxValue ? (int)keys : throw new ArgumentException($"--key-index-max-rows is too large (was {keys}).");
                    break;
                case "--async-commits":
                    o.AsyncCommits = true;
                    break;
                case "--sync-first-load":
                    o.SyncFirstLoad = true;
                    break;
                case "--first-load-flush-after":
                    var flush = Value();
                    o.FirstLoadFlushAfter = int.TryParse(flush, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var kb) && kb <= 2048
                        ? kb
                        : throw new ArgumentException($"--first-load-flush-after needs a whole number of kB from 0 to 2048 (was '{flush}').");
                    break;
                case "--cases":
                    var names = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (names.Length == 0)
                    {
                        throw new ArgumentException("--cases needs at least one case name.");
                    }

                    o.Cases = names;
                    break;
                case "--connection":
                    o.Connection = Value();
                    break;
                case "--list":
                    o.List = true;
                    break;
                case "--help" or "-h":
                    o.Help = true;
                    break;
                default:
                    throw new ArgumentException($"Unknown argument '{arg}'.");
            }
        }

        return o;
    }

    private static long PositiveCount(string name, string value)
    {
        var text = value.Replace("_", string.Empty, StringComparison.Ordinal);
        if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n <= 0)
        {
            throw new ArgumentException($"{name} must be a positive whole number (was '{value}').");
        }

        return n;
    }
}
