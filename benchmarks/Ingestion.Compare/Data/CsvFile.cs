using System.Globalization;
using System.Text;

namespace Ingestion.Benchmarks.Data;

/// <summary>Writes generated rows to an RFC 4180 CSV file with a header (the input of the CSV cases).</summary>
public static class CsvFile
{
    /// <summary>The timestamp format: ISO 8601 in UTC, readable by PostgreSQL and .NET alike.</summary>
    public const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'";

    /// <summary>Writes <paramref name="rows"/> to <paramref name="path"/>.</summary>
    /// <param name="path">The file to create (overwritten).</param>
    /// <param name="rows">The rows.</param>
    /// <returns>The file size in bytes.</returns>
    public static long Write(string path, IEnumerable<BenchRow> rows)
    {
        ArgumentNullException.ThrowIfNull(rows);
        using (var writer = new StreamWriter(path, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 1 << 16))
        {
            writer.NewLine = "\n";
            writer.WriteLine(BenchTable.ColumnList.Replace(" ", string.Empty, StringComparison.Ordinal));
            foreach (var r in rows)
            {
                WriteField(writer, r.Region);
                writer.Write(',');
                WriteField(writer, r.Code);
                writer.Write(',');
                writer.Write(r.ObservedAt.ToString(TimestampFormat, CultureInfo.InvariantCulture));
                writer.Write(',');
                WriteField(writer, r.Name);
                writer.Write(',');
                writer.Write(r.Category.ToString(CultureInfo.InvariantCulture));
                writer.Write(',');
                writer.Write(r.Quantity.ToString(CultureInfo.InvariantCulture));
                writer.Write(',');
                writer.Write(r.Latitude.ToString("R", CultureInfo.InvariantCulture));
                writer.Write(',');
                writer.Write(r.Longitude.ToString("R", CultureInfo.InvariantCulture));
                writer.Write(',');
                WriteField(writer, r.Description);
                writer.Write(',');
                writer.WriteLine(r.Active ? "true" : "false");
            }
        }

        return new FileInfo(path).Length;
    }

    private static void WriteField(StreamWriter writer, string value)
    {
        if (value.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            writer.Write(value);
            return;
        }

        writer.Write('"');
        writer.Write(value.Replace("\"", "\"\"", StringComparison.Ordinal));
        writer.Write('"');
    }
}
