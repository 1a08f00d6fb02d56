using System.Text;
using CsvHelper;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.Csv;

/// <summary>Opens CsvHelper readers over documents with the options of a CSV source, reporting malformed records as rejects.</summary>
internal static class CsvReading
{
    public static CsvReader Open(SourceDocument document, CsvSourceOptions options, IngestionContext context, HttpRedactor redactor, out bool assumeUtf8)
    {
        var encoding = TextEncodings.Find(options.Encoding) ?? document.Encoding;
        assumeUtf8 = encoding is null or UTF8Encoding;
        var reader = CsvReaderOptions.Default with
        {
            Separator = options.Delimiter is { Length: 1 } d ? d[0] : null,
            Quote = options.Quote,
            HasHeader = options.HasHeader,
            Mode = CsvMode.Rfc4180,
            TrimWhitespace = options.TrimWhitespace,
            NullValues = options.NullValues.Count > 0 ? options.NullValues.ToArray() : null,
            MalformedData = CsvMalformedDataHandling.Skip,
            FieldCountMismatch = options.RejectFieldCountMismatch ? CsvFieldCountHandling.Skip : CsvFieldCountHandling.Allow,
            OnMalformedRecord = r => context.Reject(new RejectedRecord(
                $"line {r.LineNumber}",
                null,
                Describe(r.Reason),
                redactor.Redact(Clip(r.RawRecord)))),
            Encoding = assumeUtf8 ? null : encoding,
            FormatProvider = options.CultureInfo,
            TrackLineNumbers = true,
            MaxRecordSize = 64 << 20,
        };
        return CsvReader.Create(document.Content, reader, leaveOpen: true);
    }

    public static async ValueTask<bool> ReadAsync(CsvReader csv, string sourceName, string location, CancellationToken cancellationToken)
    {
        try
        {
            return await csv.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (CsvFormatException e)
        {
            throw new IngestionException($"Source '{sourceName}': unreadable CSV in {location} at line {e.LineNumber}: {e.Message}", e)
            {
                SourceName = sourceName,
                Position = $"line {e.LineNumber}",
            };
        }
        catch (DecoderFallbackException e)
        {
            throw new IngestionException($"Source '{sourceName}': {location} is not valid in its encoding near byte {e.Index}; set Encoding (e.g. windows-1252).", e)
            {
                SourceName = sourceName,
            };
        }
    }

    public static string Raw(CsvReader csv, HttpRedactor redactor) => redactor.Redact(Clip(csv.Current.ToString()));

    public static string Clip(string? raw) => raw is null ? string.Empty : raw.Length <= 2000 ? raw : raw[..2000];

    private static string Describe(CsvMalformedReason reason) => reason switch
    {
        CsvMalformedReason.StrayQuote => "Malformed CSV: a quote inside an unquoted field.",
        CsvMalformedReason.TextAfterClosingQuote => "Malformed CSV: text after the closing quote of a field.",
        CsvMalformedReason.UnterminatedQuote => "Malformed CSV: a quoted field is never closed.",
        CsvMalformedReason.LineBreakInQuotes => "Malformed CSV: a line break inside quotes.",
        CsvMalformedReason.FieldCountMismatch => "The record has a different number of fields than the header.",
        _ => $"Malformed CSV ({reason}).",
    };
}
