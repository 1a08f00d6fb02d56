namespace Ingestion.Sync;

/// <summary>What to do with a record whose cursor field is null.</summary>
public enum NullCursorHandling
{
    /// <summary>Reject it with a reason (it counts against the error budget).</summary>
    Reject,
    /// <summary>Ingest it without moving the cursor.</summary>
    Include,
}

/// <summary>How a source reads incrementally: its cursor field and kind, and the overlap window re-read each run.</summary>
public sealed class CursorOptions
{
    /// <summary>The kind of the cursor.</summary>
    public CursorKind Kind { get; set; } = CursorKind.Timestamp;

    /// <summary>The record field the cursor comes from (for messages and rejects), e.g. <c>updated_at</c>.</summary>
    public string Field { get; set; } = "cursor";

    /// <summary>For timestamps: re-read this much before the saved cursor each run (rows tied on the cursor value or committed late are otherwise lost). The merge counts the repeats as unchanged.</summary>
    public TimeSpan Overlap { get; set; }

    /// <summary>For ids: re-read this many ids before the saved cursor each run.</summary>
    public long OverlapIds { get; set; }

    /// <summary>What to do with records whose cursor is null.</summary>
    public NullCursorHandling NullCursor { get; set; } = NullCursorHandling.Reject;

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <param name="prefix">The configuration path of these options, for the messages.</param>
    /// <returns>The problems; empty when valid.</returns>
    public IReadOnlyList<string> Validate(string prefix)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Field))
        {
            errors.Add($"{prefix}:Field must name the cursor field.");
        }

        if (Overlap < TimeSpan.Zero)
        {
            errors.Add($"{prefix}:Overlap must not be negative (was {Overlap}).");
        }

        if (OverlapIds < 0)
        {
            errors.Add($"{prefix}:OverlapIds must not be negative (was {OverlapIds}).");
        }

        if (Overlap > TimeSpan.Zero && Kind != CursorKind.Timestamp)
        {
            errors.Add($"{prefix}:Overlap applies to Timestamp cursors only (Kind is {Kind}).");
        }

        if (OverlapIds > 0 && Kind != CursorKind.Id)
        {
            errors.Add($"{prefix}:OverlapIds applies to Id cursors only (Kind is {Kind}).");
        }

        return errors;
    }
}

/// <summary>
/// The incremental-sync helper a source uses in <c>ReadAsync</c>: <see cref="Begin"/> validates the saved
/// cursor and works out what to read (from the saved cursor minus the overlap window, everything on a full
/// refresh, or the range of a backfill); <see cref="Observe(object?, string)"/> checks each record's cursor
/// value (null or wrong-typed values are rejected with their position); <see cref="Checkpoint"/> returns the
/// checkpoint to report, whose cursor never moves backwards and is left untouched by a backfill.
/// </summary>
/// <remarks>
/// Backfills are requested with the run parameters <see cref="BackfillFromParameter"/> and
/// <see cref="BackfillToParameter"/> (both inclusive, in the cursor's kind).
/// </remarks>
public sealed class IncrementalSync
{
    /// <summary>The run parameter that starts a backfill: the first cursor value to re-import.</summary>
    public const string BackfillFromParameter = "backfill.from";

    /// <summary>The run parameter that ends a backfill: the last cursor value to re-import (optional).</summary>
    public const string BackfillToParameter = "backfill.to";

    private readonly IngestionContext _context;
    private readonly CursorOptions _options;
    private CursorValue? _max;

    private IncrementalSync(IngestionContext context, CursorOptions options, CursorValue? saved, CursorValue? from, CursorValue? to, bool isBackfill)
    {
        _context = context;
        _options = options;
        Saved = saved;
        From = from;
        To = to;
        IsBackfill = isBackfill;
    }

    /// <summary>The cursor saved by the last committed run (<see langword="null"/> on a first run or a full refresh).</summary>
    public CursorValue? Saved { get; }

    /// <summary>Read records from this cursor value, inclusive (<see langword="null"/>: from the beginning). Includes the overlap window.</summary>
    public CursorValue? From { get; }

    /// <summary>Read records up to this cursor value, inclusive (<see langword="null"/>: no upper bound). Set by backfills.</summary>
    public CursorValue? To { get; }

    /// <summary>Whether this run re-imports a range without touching the saved cursor.</summary>
    public bool IsBackfill { get; }

    /// <summary>Records observed with a cursor value at or before the saved cursor: the overlap window re-read (the merge counts them unchanged).</summary>
    public long Repeats { get; private set; }

    /// <summary>Records observed.</summary>
    public long Observed { get; private set; }

    /// <summary>Records rejected for a null or wrong-typed cursor.</summary>
    public long Rejected { get; private set; }

    /// <summary>The greatest cursor value observed, or <see langword="null"/>.</summary>
    public CursorValue? Max => _max;

    /// <summary>Whether the source returned nothing newer than the saved cursor although it returned records (its data went backwards: restored, or a clock moved).</summary>
    public bool WentBackwards => Saved is { Kind: not CursorKind.Opaque } s && _max is { } m && m < s;

    /// <summary>Validates the saved cursor and the backfill parameters and works out the read window.</summary>
    /// <param name="context">The run's context.</param>
    /// <param name="options">The cursor settings.</param>
    /// <returns>The helper for this run.</returns>
    /// <exception cref="IngestionException">The saved cursor or a backfill parameter is not of the cursor's kind, or the settings are invalid; the message names the source and the field.</exception>
    public static IncrementalSync Begin(IngestionContext context, CursorOptions options)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(options);
        var source = context.SourceName;
        if (options.Validate($"Ingestion:Sources:{source}:Sync:Cursor") is { Count: > 0 } problems)
        {
            throw new IngestionException($"Source '{source}': {string.Join(" ", problems)}") { SourceName = source, Field = options.Field };
        }

        CursorValue? saved = null;
        if (context.State.Cursor is { } text)
        {
            if (!CursorValue.TryParse(options.Kind, text, out var s))
            {
                throw new IngestionException($"Source '{source}': the saved cursor '{Truncate(text)}' is not {Describe(options.Kind)} (the cursor field '{options.Field}' is configured as {options.Kind}). Reset it or set a valid value with the state commands; nothing was read.")
                {
                    SourceName = source,
                    Position = "saved state",
                    Field = options.Field,
                };
            }

            saved = s;
        }

        var hasFrom = context.Parameters.TryGetValue(BackfillFromParameter, out var fromText);
        var hasTo = context.Parameters.TryGetValue(BackfillToParameter, out var toText);
        if (hasFrom || hasTo)
        {
            if (!hasFrom)
            {
                throw BadParameter(context, options, BackfillToParameter, $"a backfill needs '{BackfillFromParameter}' (the first value to re-import) as well");
            }

            if (context.Mode == IngestionMode.FullRefresh)
            {
                throw BadParameter(context, options, BackfillFromParameter, "a backfill cannot be a full refresh: a full refresh already reads everything");
            }

            if (options.Kind == CursorKind.Opaque)
            {
                throw BadParameter(context, options, BackfillFromParameter, "an opaque cursor has no order, so it has no range to backfill");
            }

            var from = ParseParameter(context, options, BackfillFromParameter, fromText);
            CursorValue? to = hasTo ? ParseParameter(context, options, BackfillToParameter, toText) : null;
            if (to is { } t && t < from)
            {
                throw BadParameter(context, options, BackfillToParameter, $"the range is empty: '{toText}' is before '{fromText}'");
            }

            return new IncrementalSync(context, options, saved, from, to, isBackfill: true);
        }

        if (context.Mode == IngestionMode.FullRefresh || saved is null)
        {
            return new IncrementalSync(context, options, saved, null, null, isBackfill: false);
        }

        var start = saved.Value.Kind switch
        {
            CursorKind.Timestamp => CursorValue.FromTimestamp(saved.Value.Timestamp - options.Overlap),
            CursorKind.Id => CursorValue.FromId(saved.Value.Id > long.MinValue + options.OverlapIds ? saved.Value.Id - options.OverlapIds : long.MinValue),
            _ => saved.Value,
        };
        return new IncrementalSync(context, options, saved, start, null, isBackfill: false);
    }

    /// <summary>
    /// Checks one record's cursor value and tracks the greatest. A null value is rejected (or included without
    /// moving the cursor, per <see cref="CursorOptions.NullCursor"/>); a value of the wrong type is rejected.
    /// </summary>
    /// <param name="value">The record's cursor field (a <see cref="DateTimeOffset"/>, <see cref="DateTime"/>, integer or text).</param>
    /// <param name="position">The record's position, for the reject.</param>
    /// <returns>Whether to yield the record (<see langword="false"/>: it was rejected).</returns>
    public bool Observe(object? value, string position)
    {
        ArgumentNullException.ThrowIfNull(position);
        Observed++;
        if (value is null)
        {
            if (_options.NullCursor == NullCursorHandling.Include)
            {
                return true;
            }

            Rejected++;
            _context.Reject(new RejectedRecord(position, _options.Field, $"The cursor field '{_options.Field}' is null: the record cannot be placed in the incremental sync (set Sync:Cursor:NullCursor to Include to ingest such records)."));
            return false;
        }

        if (!CursorValue.TryConvert(_options.Kind, value, out var v))
        {
            Rejected++;
            _context.Reject(new RejectedRecord(position, _options.Field, $"The cursor field '{_options.Field}' holds a {value.GetType().Name}, not {Describe(_options.Kind)}.", Truncate(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty)));
            return false;
        }

        Track(v);
        return true;
    }

    /// <summary>Checks one record's timestamp cursor.</summary>
    /// <param name="value">The value.</param>
    /// <param name="position">The record's position.</param>
    /// <returns>Whether to yield the record.</returns>
    public bool Observe(DateTimeOffset? value, string position) => Observe((object?)value, position);

    /// <summary>Checks one record's id cursor.</summary>
    /// <param name="value">The value.</param>
    /// <param name="position">The record's position.</param>
    /// <returns>Whether to yield the record.</returns>
    public bool Observe(long? value, string position) => Observe((object?)value, position);

    /// <summary>Records the token an opaque-cursor source was handed for its next read.</summary>
    /// <param name="token">The token.</param>
    public void ObserveToken(string token) => _max = CursorValue.FromToken(token);

    /// <summary>
    /// The checkpoint to report after the records observed so far: the greatest cursor value seen, never
    /// before the saved cursor (a source whose data went backwards does not rewind the sync); no cursor
    /// change at all for a backfill (<see cref="SourceCheckpoint.Cursor"/> is <see langword="null"/>, which keeps the saved one).
    /// </summary>
    /// <returns>The checkpoint.</returns>
    public SourceCheckpoint Checkpoint()
    {
        if (IsBackfill || _max is not { } max)
        {
            return new SourceCheckpoint(null);
        }

        if (WentBackwards)
        {
            SyncLog.CursorWentBackwards(_context.Logger, _context.SourceName, max.ToString(), Saved!.Value.ToString());
            return new SourceCheckpoint(null);
        }

        return new SourceCheckpoint(max.ToString());
    }

    private void Track(CursorValue v)
    {
        if (Saved is { Kind: not CursorKind.Opaque } s && v <= s)
        {
            Repeats++;
        }

        if (_max is not { } m || v > m)
        {
            _max = v;
        }
    }

    private static CursorValue ParseParameter(IngestionContext context, CursorOptions options, string name, string? text) =>
        CursorValue.TryParse(options.Kind, text, out var v) ? v
            : throw BadParameter(context, options, name, $"'{Truncate(text ?? string.Empty)}' is not {Describe(options.Kind)}");

    private static IngestionException BadParameter(IngestionContext context, CursorOptions options, string name, string problem) =>
        new($"Source '{context.SourceName}': run parameter '{name}': {problem} (the cursor field '{options.Field}' is a {options.Kind}).")
        {
            SourceName = context.SourceName,
            Position = "run parameters",
            Field = name,
        };

    private static string Describe(CursorKind kind) => kind switch
    {
        CursorKind.Timestamp => "a timestamp",
        CursorKind.Id => "an integer id",
        _ => "a token",
    };

    private static string Truncate(string s) => s.Length <= 80 ? s : s[..77] + "...";
}
