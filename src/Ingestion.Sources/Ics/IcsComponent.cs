using System.Globalization;
using System.Text;

namespace Ingestion.Sources.Ics;

/// <summary>One content line of an iCalendar document, unfolded: <c>NAME;PARAM=value:VALUE</c>.</summary>
/// <param name="Name">The property name, upper-cased.</param>
/// <param name="Parameters">The parameters (names upper-cased, quotes removed, RFC 6868 caret escapes decoded).</param>
/// <param name="Value">The raw value (TEXT escapes not yet decoded: see <see cref="IcsText.Unescape(string)"/>).</param>
/// <param name="Line">The 1-based physical line where the content line starts.</param>
internal sealed record IcsProperty(string Name, IReadOnlyDictionary<string, string> Parameters, string Value, int Line)
{
    public string? Param(string name) => Parameters.TryGetValue(name, out var v) ? v : null;
}

/// <summary>A component (<c>BEGIN:X</c> ... <c>END:X</c>) with its properties and sub-components.</summary>
internal sealed class IcsComponent(string name, int line)
{
    public string Name { get; } = name;

    public int Line { get; } = line;

    public List<IcsProperty> Properties { get; } = [];

    public List<IcsComponent> Children { get; } = [];

    /// <summary>Lines inside the component that could not be read, with the reason.</summary>
    public List<(int Line, string Reason, string Raw)> Errors { get; } = [];

    public IcsProperty? Property(string propertyName) => Properties.Find(p => p.Name == propertyName);

    public IEnumerable<IcsProperty> All(string propertyName) => Properties.Where(p => p.Name == propertyName);
}

/// <summary>TEXT value escapes (RFC 5545 3.3.11).</summary>
internal static class IcsText
{
    public static string Unescape(string value)
    {
        if (value.IndexOf('\\', StringComparison.Ordinal) < 0)
        {
            return value;
        }

        var sb = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '\\' && i + 1 < value.Length)
            {
                var next = value[i + 1];
                switch (next)
                {
                    case 'n' or 'N':
                        sb.Append('\n');
                        i++;
                        continue;
                    case '\\' or ';' or ',' or ':' or '"':
                        sb.Append(next);
                        i++;
                        continue;
                }
            }

            sb.Append(c);
        }

        return sb.ToString();
    }

    /// <summary>Splits a multi-valued TEXT (e.g. CATEGORIES) on unescaped commas, then unescapes each value.</summary>
    public static IEnumerable<string> SplitList(string value)
    {
        var start = 0;
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '\\')
            {
                i++;
                continue;
            }

            if (value[i] == ',')
            {
                yield return Unescape(value[start..i]);
                start = i + 1;
            }
        }

        yield return Unescape(value[start..]);
    }
}

/// <summary>
/// Reads an iCalendar document into components: unfolds lines (CRLF or LF followed by a space or
/// tab), splits names, parameters (quoted values, RFC 6868 carets) and values, and nests
/// <c>BEGIN</c>/<c>END</c>. Lines that cannot be read are kept as errors of their component, so the
/// event they belong to is rejected with its line number; structural errors (no <c>VCALENDAR</c>,
/// a truncated document, mismatched <c>END</c>) throw.
/// </summary>
internal sealed class IcsDocumentReader(TextReader reader, string describe)
{
    private string? _pending;
    private int _pendingLine;
    private int _physicalLine;

    /// <summary>Reads the calendars of the document (usually one).</summary>
    /// <param name="maxComponents">The most components accepted (a guard against hostile input).</param>
    /// <returns>The top-level <c>VCALENDAR</c> components.</returns>
    public List<IcsComponent> ReadCalendars(int maxComponents)
    {
        var calendars = new List<IcsComponent>();
        var stack = new Stack<IcsComponent>();
        var components = 0;
        var sawAnything = false;
        while (TryReadLogicalLine(out var text, out var line))
        {
            if (text.Length == 0 || (!sawAnything && string.IsNullOrWhiteSpace(text)))
            {
                // Blank lines, and (as lenient readers do) a blank or indented whitespace line before the calendar.
                continue;
            }

            if (!sawAnything)
            {
                sawAnything = true;
                text = text.Trim();
                if (!text.Equals("BEGIN:VCALENDAR", StringComparison.OrdinalIgnoreCase))
                {
                    throw Error(line, $"the document does not start with BEGIN:VCALENDAR (it starts with '{Truncate(text)}'); it is not an iCalendar file");
                }
            }

            if (!TryParse(text, line, out var property, out var reason))
            {
                if (stack.Count == 0)
                {
                    throw Error(line, $"{reason} outside any component");
                }

                stack.Peek().Errors.Add((line, reason, Truncate(text)));
                continue;
            }

            if (property.Name == "BEGIN")
            {
                if (++components > maxComponents)
                {
                    throw Error(line, $"the document has more than {maxComponents} components");
                }

                var name = property.Value.Trim().ToUpperInvariant();
                if (stack.Count == 0 && name != "VCALENDAR")
                {
                    throw Error(line, $"BEGIN:{name} outside a VCALENDAR");
                }

                stack.Push(new IcsComponent(name, line));
            }
            else if (property.Name == "END")
            {
                var name = property.Value.Trim().ToUpperInvariant();
                if (stack.Count == 0)
                {
                    throw Error(line, $"END:{name} without a matching BEGIN");
                }

                if (stack.Peek().Name == "VALARM" && name != "VALARM" && stack.Count > 1 && stack.ElementAt(1).Name == name)
                {
                    // An alarm left open by its exporter: dropped, with the line kept as an error of its event.
                    var alarm = stack.Pop();
                    alarm.Errors.Add((alarm.Line, $"BEGIN:VALARM is not closed before END:{name} of line {line}", "BEGIN:VALARM"));
                    stack.Peek().Children.Add(alarm);
                }

                if (stack.Peek().Name != name)
                {
                    throw Error(line, $"END:{name} closes BEGIN:{stack.Peek().Name} of line {stack.Peek().Line}");
                }

                var done = stack.Pop();
                if (stack.Count == 0)
                {
                    calendars.Add(done);
                }
                else
                {
                    stack.Peek().Children.Add(done);
                }
            }
            else if (stack.Count == 0)
            {
                throw Error(line, $"the property {property.Name} is outside any component (content after END:VCALENDAR?)");
            }
            else
            {
                stack.Peek().Properties.Add(property);
            }
        }

        if (stack.Count > 0)
        {
            var open = stack.Peek();
            throw Error(_physicalLine, $"the document ends inside BEGIN:{open.Name} of line {open.Line} (truncated: END:{open.Name} is missing)");
        }

        if (!sawAnything)
        {
            throw Error(1, "the document is empty; it is not an iCalendar file");
        }

        return calendars;
    }

    private IngestionException Error(int line, string reason)
    {
        var position = string.Create(CultureInfo.InvariantCulture, $"line {line}");
        return new IngestionException($"{describe}: {reason} at {position}.") { Position = position };
    }

    private static string Truncate(string value) => value.Length <= 120 ? value : value[..120] + "...";

    private bool TryReadLogicalLine(out string text, out int line)
    {
        string? first;
        if (_pending is not null)
        {
            first = _pending;
            line = _pendingLine;
            _pending = null;
        }
        else
        {
            first = reader.ReadLine();
            if (first is null)
            {
                text = string.Empty;
                line = _physicalLine;
                return false;
            }

            line = ++_physicalLine;
        }

        StringBuilder? folded = null;
        while (true)
        {
            var next = reader.ReadLine();
            if (next is null)
            {
                break;
            }

            _physicalLine++;
            if (next.Length > 0 && next[0] is ' ' or '\t')
            {
                folded ??= new StringBuilder(first);
                folded.Append(next, 1, next.Length - 1);
                continue;
            }

            _pending = next;
            _pendingLine = _physicalLine;
            break;
        }

        text = folded?.ToString() ?? first;
        return true;
    }

    private static bool TryParse(string text, int line, out IcsProperty property, out string reason)
    {
        property = null!;
        var i = 0;
        while (i < text.Length && text[i] is not (';' or ':'))
        {
            i++;
        }

        if (i == 0 || i == text.Length)
        {
            reason = i == 0 ? "a content line has no property name" : "a content line has no ':' before its value";
            return false;
        }

        var name = text[..i].Trim().ToUpperInvariant();
        if (!name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
        {
            reason = $"'{Truncate(name)}' is not a property name";
            return false;
        }

        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        while (text[i] == ';')
        {
            i++;
            var eq = text.IndexOf('=', i);
            if (eq < 0)
            {
                reason = $"a parameter of {name} has no '='";
                return false;
            }

            var paramName = text[i..eq].Trim().ToUpperInvariant();
            i = eq + 1;
            var values = new List<string>();
            while (true)
            {
                if (i < text.Length && text[i] == '"')
                {
                    var close = text.IndexOf('"', i + 1);
                    if (close < 0)
                    {
                        reason = $"the parameter {paramName} of {name} has an unclosed quote";
                        return false;
                    }

                    values.Add(Caret(text[(i + 1)..close]));
                    i = close + 1;
                }
                else
                {
                    var start = i;
                    while (i < text.Length && text[i] is not (';' or ':' or ','))
                    {
                        i++;
                    }

                    values.Add(Caret(text[start..i]));
                }

                if (i < text.Length && text[i] == ',')
                {
                    i++;
                    continue;
                }

                break;
            }

            if (i >= text.Length)
            {
                reason = $"the content line of {name} has no ':' before its value";
                return false;
            }

            parameters.TryAdd(paramName, string.Join(',', values));
        }

        if (text[i] != ':')
        {
            reason = $"the content line of {name} has unexpected text after its parameters";
            return false;
        }

        property = new IcsProperty(name, parameters, text[(i + 1)..], line);
        reason = string.Empty;
        return true;
    }

    private static string Caret(string value)
    {
        if (!value.Contains('^', StringComparison.Ordinal))
        {
            return value;
        }

        var sb = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] == '^' && i + 1 < value.Length && value[i + 1] is 'n' or '\'' or '^')
            {
                sb.Append(value[i + 1] switch { 'n' => '\n', '\'' => '"', _ => '^' });
                i++;
                continue;
            }

            sb.Append(value[i]);
        }

        return sb.ToString();
    }
}
