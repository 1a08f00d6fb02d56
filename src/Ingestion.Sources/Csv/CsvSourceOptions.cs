using System.Globalization;
using Ingestion.Sources.Http;
using Ingestion.Sources.Mapping;

namespace Ingestion.Sources.Csv;

/// <summary>
/// Settings of a CSV source, bound from <c>Ingestion:Sources:&lt;name&gt;</c>: where the file is, how it is
/// delimited, quoted (RFC 4180) and encoded, and (for dynamic records) how its headers map to typed columns.
/// </summary>
public sealed class CsvSourceOptions : IHttpSourceOptions
{
    /// <summary>A local path, a <c>file:</c> URL or an <c>http(s)</c> URL. Required.</summary>
    public string? Location { get; set; }

    /// <summary>The field delimiter, one ASCII character (<c>,</c> <c>;</c> <c>\t</c> <c>|</c>); empty or <see langword="null"/> detects it from the first lines. Default <c>,</c>.</summary>
    public string? Delimiter { get; set; } = ",";

    /// <summary>The quote character. Default <c>"</c>.</summary>
    public char Quote { get; set; } = '"';

    /// <summary>The text encoding (<c>utf-8</c>, <c>windows-1252</c>, <c>iso-8859-1</c>...). Default: the server's charset, else UTF-8 (byte order marks honoured).</summary>
    public string? Encoding { get; set; }

    /// <summary>The culture of numbers and dates (<c>fr-CA</c>); default invariant.</summary>
    public string? Culture { get; set; }

    /// <summary>Whether the first record is a header. Default <see langword="true"/>.</summary>
    public bool HasHeader { get; set; } = true;

    /// <summary>Trim spaces and tabs around unquoted values.</summary>
    public bool TrimWhitespace { get; set; }

    /// <summary>Values that mean null besides the empty field (<c>NULL</c>, <c>\N</c>, <c>N/A</c>).</summary>
    public IList<string> NullValues { get; } = new List<string>();

    /// <summary>
    /// What a quoted empty field (<c>""</c>) of a text column becomes. Default <see cref="CsvEmptyValue.EmptyString"/>,
    /// as in PostgreSQL's <c>COPY ... CSV</c>. Columns of other types take any empty field as null.
    /// </summary>
    public CsvEmptyValue QuotedEmpty { get; set; } = CsvEmptyValue.EmptyString;

    /// <summary>
    /// What an empty unquoted field (<c>a,,b</c>) of a text column becomes. Default <see cref="CsvEmptyValue.Null"/>,
    /// as in PostgreSQL's <c>COPY ... CSV</c>.
    /// </summary>
    public CsvEmptyValue UnquotedEmpty { get; set; } = CsvEmptyValue.Null;

    /// <summary>Reject records whose field count differs from the header's. Default <see langword="true"/>.</summary>
    public bool RejectFieldCountMismatch { get; set; } = true;

    /// <summary>
    /// The most lines one quoted field may span (default 1,000). A quote still open past that, or at the end of the
    /// file, is taken as never closed: the record is rejected from its start to the end of the line where the quote
    /// opened (naming that line and the field) and reading resumes on the next line, so one stray quote never
    /// swallows the rest of the file. A field that spans lines and whose closing quote is followed by text, or that
    /// makes a record with another number of fields than the header (when <see cref="RejectFieldCountMismatch"/>),
    /// is taken as never closed too.
    /// </summary>
    public int MaxFieldLines { get; set; } = 1_000;

    /// <summary>The most bytes one quoted field may hold (default 16 MiB, room for large WKT geometries); past that it is treated as <see cref="MaxFieldLines"/> describes.</summary>
    public long MaxFieldBytes { get; set; } = 16L << 20;

    /// <summary>
    /// For dynamic records: the columns, each from a header (<see cref="ColumnMappingOptions.From"/>, or the
    /// 1-based field number when there is no header) with a type and optional format. Empty: every header becomes
    /// a text column named in snake_case.
    /// </summary>
    public IList<ColumnMappingOptions> Columns { get; } = new List<ColumnMappingOptions>();

    /// <summary>For dynamic records: the key columns; empty uses <c>(source, source_id)</c>, which needs a <c>source_id</c> column.</summary>
    public IList<string> Key { get; } = new List<string>();

    /// <summary>The HTTP settings when <see cref="Location"/> is a URL.</summary>
    public SourceHttpOptions Http { get; set; } = new();

    internal CultureInfo CultureInfo => string.IsNullOrEmpty(Culture) ? CultureInfo.InvariantCulture : CultureInfo.GetCultureInfo(Culture);

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <param name="prefix">The configuration path of the options.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<string> Validate(string prefix)
    {
        if (string.IsNullOrWhiteSpace(Location))
        {
            yield return $"{prefix}:Location is required (a path or an http(s) URL).";
        }

        if (Delimiter is { Length: > 0 } d && (d.Length != 1 || d[0] > 127 || d[0] is '\r' or '\n'))
        {
            yield return $"{prefix}:Delimiter must be one ASCII character other than a line break (was '{d}').";
        }

        if (Quote > 127 || Quote is '\r' or '\n' || (Delimiter is { Length: 1 } && Delimiter[0] == Quote))
        {
            yield return $"{prefix}:Quote must be one ASCII character, not a line break nor the delimiter (was '{Quote}').";
        }

        if (MaxFieldLines < 1)
        {
            yield return $"{prefix}:MaxFieldLines must be at least 1 (was {MaxFieldLines}).";
        }

        if (MaxFieldBytes is < 1 or > 64L << 20)
        {
            yield return $"{prefix}:MaxFieldBytes must be between 1 and 67108864 (64 MiB, the longest record read) (was {MaxFieldBytes}).";
        }

        if (Encoding is { Length: > 0 } e && TextEncodings.Find(e) is null)
        {
            yield return $"{prefix}:Encoding '{e}' is not a known encoding.";
        }

        if (Culture is { Length: > 0 } c)
        {
            string? error = null;
            try
            {
                _ = CultureInfo.GetCultureInfo(c, predefinedOnly: true);
            }
            catch (CultureNotFoundException)
            {
                error = $"{prefix}:Culture '{c}' is not a known culture.";
            }

            if (error is not null)
            {
                yield return error;
            }
        }

        if (!HasHeader)
        {
            for (var i = 0; i < Columns.Count; i++)
            {
                if (!int.TryParse(Columns[i].SourceField, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1)
                {
                    yield return $"{prefix}:Columns:{i}:From must be a 1-based field number when HasHeader is false (was '{Columns[i].SourceField}').";
                }
            }

            if (Columns.Count == 0)
            {
                yield return $"{prefix}:Columns are required when HasHeader is false.";
            }
        }

        if (Key.Count == 0 && Columns.Count > 0 && !Columns.Any(c => c.Name == RecordSchema.SourceIdColumnName))
        {
            yield return $"{prefix}:Key is required: without it records are keyed by (source, source_id), and no entry of Columns is named source_id.";
        }

        if (!Enum.IsDefined(QuotedEmpty) || !Enum.IsDefined(UnquotedEmpty))
        {
            yield return $"{prefix}:QuotedEmpty and UnquotedEmpty must be Null or EmptyString (were {QuotedEmpty} and {UnquotedEmpty}).";
        }

        foreach (var error in ColumnValues.Validate(prefix, Columns, Key))
        {
            yield return error;
        }

        foreach (var error in (Http ?? new SourceHttpOptions()).Validate($"{prefix}:Http"))
        {
            yield return error;
        }
    }
}

/// <summary>What an empty CSV field of a text column becomes.</summary>
public enum CsvEmptyValue
{
    /// <summary>SQL NULL.</summary>
    Null,

    /// <summary>The empty string.</summary>
    EmptyString,
}
