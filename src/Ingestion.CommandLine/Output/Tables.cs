using System.Globalization;
using Spectre.Console;

namespace Ingestion.CommandLine.Output;

/// <summary>Writes a list: a table in a terminal, tab-separated lines with a header otherwise.</summary>
internal static class Tables
{
    public static void Write(IngestionCommandContext context, string title, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        if (context.IsTerminal)
        {
            var table = new Table { Title = new TableTitle(title), Border = TableBorder.Rounded };
            foreach (var h in header)
            {
                table.AddColumn(new TableColumn(Markup.Escape(h)));
            }

            foreach (var row in rows)
            {
                table.AddRow(row.Select(c => (Spectre.Console.Rendering.IRenderable)new Text(c)).ToArray());
            }

            context.Console.Write(table);
            return;
        }

        context.Output.WriteLine(string.Join('\t', header));
        foreach (var row in rows)
        {
            context.Output.WriteLine(string.Join('\t', row.Select(Plain)));
        }
    }

    /// <summary>Writes one <c>kind key=value ...</c> line (values with spaces are quoted).</summary>
    public static void Line(IngestionCommandContext context, string kind, params (string Key, object? Value)[] fields)
    {
        var parts = fields.Where(f => f.Value is not null).Select(f => $"{f.Key}={Quote(Format(f.Value))}");
        context.Output.WriteLine($"{kind} {string.Join(' ', parts)}");
    }

    /// <summary>The header of the count columns of <see cref="Counts"/>.</summary>
    public static IReadOnlyList<string> CountHeaders { get; } = ["read", "created", "updated", "unchanged", "dup", "rejected", "deleted"];

    /// <summary>The count columns of a run or job, in the order of <see cref="CountHeaders"/>.</summary>
    public static IEnumerable<string> Counts(IngestionCounts c) =>
        new[] { c.Read, c.Created, c.Updated, c.Unchanged, c.Duplicates, c.Rejected, c.Deleted }.Select(Number);

    public static string Time(DateTimeOffset? time) =>
        time is { } t ? t.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) : string.Empty;

    public static string Number(long n) => n.ToString(CultureInfo.InvariantCulture);

    public static string Seconds(TimeSpan? span) => span is { } s ? s.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture) : string.Empty;

    private static string Format(object? value) => value switch
    {
        DateTimeOffset t => t.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture),
        double d => d.ToString("0.##", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value?.ToString() ?? string.Empty,
    };

    private static string Quote(string text) =>
        text.Length > 0 && !text.Any(c => char.IsWhiteSpace(c) || c == '"') ? text : $"\"{Plain(text).Replace("\"", "\\\"", StringComparison.Ordinal)}\"";

    private static string Plain(string text) => text.Replace('\t', ' ').Replace('\r', ' ').Replace('\n', ' ');
}
