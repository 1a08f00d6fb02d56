using System.Text;
using CsvHelper;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.Csv;

/// <summary>
/// One CSV document opened with the options of a CSV source: a CsvHelper reader behind a <see cref="CsvQuoteGuard"/>,
/// reporting malformed records and unclosed quotes as rejected records. A quote inside an unquoted field is text
/// (as Python's csv module reads it); text after a closing quote and an unclosed quote are rejected.
/// </summary>
internal sealed class CsvReading : IAsyncDisposable
{
    private readonly IngestionContext _context;
    private readonly HttpRedactor _redactor;
    private readonly string _location;
    private readonly Encoding _rawEncoding;
    private readonly CsvSourceOptions _options;
    private readonly Dictionary<long, CsvMalformedReason> _recovered = [];
    private readonly Queue<CsvBrokenQuote> _broken = new();

    private CsvReading(SourceDocument document, CsvSourceOptions options, IngestionContext context, HttpRedactor redactor)
    {
        _context = context;
        _redactor = redactor;
        _location = document.Location;
        _options = options;
        var encoding = TextEncodings.Find(options.Encoding) ?? document.Encoding;
        AssumeUtf8 = encoding is null or UTF8Encoding;
        _rawEncoding = encoding ?? Encoding.UTF8;
        var settings = CsvReaderOptions.Default with
        {
            Separator = options.Delimiter is { Length: 1 } d ? d[0] : null,
            Quote = options.Quote,
            HasHeader = options.HasHeader,
            Mode = CsvMode.Rfc4180,
            TrimWhitespace = options.TrimWhitespace,
            NullValues = options.NullValues.Count > 0 ? options.NullValues.ToArray() : null,
            MalformedData = CsvMalformedDataHandling.Recover,
            FieldCountMismatch = options.RejectFieldCountMismatch ? CsvFieldCountHandling.Skip : CsvFieldCountHandling.Allow,
            OnMalformedRecord = OnMalformed,
            Encoding = AssumeUtf8 ? null : encoding,
            FormatProvider = options.CultureInfo,
            TrackLineNumbers = true,
            MaxRecordSize = 64 << 20,
        };
        var limits = new CsvQuoteLimits(
            (byte)options.Quote,
            settings.Separator is { } s ? (byte)s : null,
            options.TrimWhitespace,
            options.HasHeader,
            options.MaxFieldLines,
            options.MaxFieldBytes,
            options.RejectFieldCountMismatch,
            PassThrough: encoding is UnicodeEncoding or UTF32Encoding);
        Reader = CsvReader.Create(new CsvQuoteGuard(document.Content, limits, OnBrokenQuote), settings, leaveOpen: true);
    }

    /// <summary>The reader.</summary>
    public CsvReader Reader { get; }

    /// <summary>Whether the input is read as UTF-8 (so U+FFFD in a value may be an undecodable byte).</summary>
    public bool AssumeUtf8 { get; }

    public static CsvReading Open(SourceDocument document, CsvSourceOptions options, IngestionContext context, HttpRedactor redactor) =>
        new(document, options, context, redactor);

    /// <summary>Reads the next record that is well formed, rejecting the others; <see langword="false"/> at the end.</summary>
    public async ValueTask<bool> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            bool read;
            try
            {
                read = await Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (CsvFormatException e)
            {
                throw new IngestionException($"Source '{_context.SourceName}': unreadable CSV in {_location} at line {e.LineNumber}: {e.Message}", e)
                {
                    SourceName = _context.SourceName,
                    Position = $"line {e.LineNumber}",
                };
            }
            catch (DecoderFallbackException e)
            {
                throw new IngestionException($"Source '{_context.SourceName}': {_location} is not valid in its encoding near byte {e.Index}; set Encoding (e.g. windows-1252).", e)
                {
                    SourceName = _context.SourceName,
                };
            }

            while (_broken.TryDequeue(out var broken))
            {
                RejectBrokenQuote(broken);
            }

            if (!read)
            {
                return false;
            }

            if (_recovered.Count == 0 || !_recovered.Remove(Reader.LineNumber, out var reason))
            {
                return true;
            }

            _context.Reject(new RejectedRecord($"line {Reader.LineNumber}", null, Describe(reason), Raw()));
        }
    }

    /// <summary>
    /// Whether an empty text field is the empty string rather than null: a quoted empty field (<c>""</c>) by
    /// <see cref="CsvSourceOptions.QuotedEmpty"/>, an unquoted one by <see cref="CsvSourceOptions.UnquotedEmpty"/>;
    /// a value of <see cref="CsvSourceOptions.NullValues"/> is always null.
    /// </summary>
    /// <param name="raw">The field as written.</param>
    /// <param name="options">The source's options.</param>
    public static bool IsEmptyString(ReadOnlySpan<byte> raw, CsvSourceOptions options)
    {
        var trimmed = raw.Trim(" \t"u8);
        if (trimmed.IsEmpty)
        {
            return options.UnquotedEmpty == CsvEmptyValue.EmptyString;
        }

        return trimmed.Length == 2 && trimmed[0] == options.Quote && trimmed[1] == options.Quote && options.QuotedEmpty == CsvEmptyValue.EmptyString;
    }

    /// <summary>The current record as it appears in the input (clipped, secrets masked).</summary>
    public string Raw() => _redactor.Redact(Clip(Reader.Current.ToString()));

    public ValueTask DisposeAsync() => Reader.DisposeAsync();

    private static string Clip(string? raw) => raw is null ? string.Empty : raw.Length <= 2000 ? raw : raw[..2000];

    private void OnMalformed(CsvMalformedRecord record)
    {
        if (record.Skipped)
        {
            _context.Reject(new RejectedRecord($"line {record.LineNumber}", null, Describe(record.Reason), _redactor.Redact(Clip(record.RawRecord))));
        }
        else if (record.Reason != CsvMalformedReason.StrayQuote)
        {
            // Recovered by the reader but not trusted: rejected when the reader returns it.
            _recovered.TryAdd(record.LineNumber, record.Reason);
        }
    }

    /// <summary>Fails on a broken header at once; other records wait for the reader to return (it is reading when called).</summary>
    private void OnBrokenQuote(CsvBrokenQuote broken)
    {
        if (broken.IsHeader)
        {
            RejectBrokenQuote(broken);
        }

        _broken.Enqueue(broken);
    }

    private void RejectBrokenQuote(CsvBrokenQuote broken)
    {
        var headers = broken.IsHeader || !_options.HasHeader ? [] : Reader.Headers;
        var field = broken.Field < headers.Count ? headers[broken.Field] : null;
        var named = field is null ? $"field {broken.Field + 1}" : $"field '{field}' (column {broken.Field + 1})";
        var why = broken.Kind switch
        {
            CsvBrokenQuoteKind.TooManyLines => $"spans more than {_options.MaxFieldLines} lines (MaxFieldLines)",
            CsvBrokenQuoteKind.TooManyBytes => $"is longer than {_options.MaxFieldBytes} bytes (MaxFieldBytes)",
            CsvBrokenQuoteKind.EndOfInput => "is still open at the end of the file",
            CsvBrokenQuoteKind.TextAfterClosingQuote => "spans lines and its closing quote is followed by text",
            _ => "makes a record of several lines whose number of fields differs from the header's",
        };
        var what = $"the quote that opens {named} on line {broken.Line} {why}";
        if (broken.IsHeader)
        {
            throw new IngestionException($"Source '{_context.SourceName}': the header of {_location} is unreadable: {what}.")
            {
                SourceName = _context.SourceName,
                Position = $"line {broken.Line}",
            };
        }

        var reason = $"Malformed CSV: {what}; it is taken as never closed, so this record is rejected and reading resumes on line {broken.Line + 1}.";
        _context.Reject(new RejectedRecord($"line {broken.Line}", field, reason, _redactor.Redact(Clip(_rawEncoding.GetString(broken.Raw)))));
    }

    private static string Describe(CsvMalformedReason reason) => reason switch
    {
        CsvMalformedReason.TextAfterClosingQuote => "Malformed CSV: text after the closing quote of a field.",
        CsvMalformedReason.UnterminatedQuote => "Malformed CSV: a quoted field is never closed.",
        CsvMalformedReason.LineBreakInQuotes => "Malformed CSV: a line break inside quotes.",
        CsvMalformedReason.FieldCountMismatch => "The record has a different number of fields than the header.",
        _ => $"Malformed CSV ({reason}).",
    };
}
