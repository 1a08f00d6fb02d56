using System.Text.RegularExpressions;

namespace Ingestion.Testing.Tests.Docs;

/// <summary>A fenced code block of a Markdown page.</summary>
/// <param name="Page">The page's path.</param>
/// <param name="Line">The 1-based line of the opening fence.</param>
/// <param name="Language">The first word of the info string (<c>csharp</c>, <c>json</c>, <c>bash</c>...).</param>
/// <param name="Title">The <c>title="..."</c> of the info string: the block is a whole file of that name.</param>
/// <param name="IsFragment">The info string says <c>fragment</c>: an excerpt, not compiled.</param>
/// <param name="Code">The block's text.</param>
internal sealed record CodeBlock(string Page, int Line, string Language, string? Title, bool IsFragment, string Code)
{
    /// <summary>Where the block is, for messages: <c>README.md:49</c>.</summary>
    public string Where => $"{System.IO.Path.GetFileName(Page)}:{Line}";

    /// <summary>The file the block becomes in the snippets project: its title under a folder named after its page.</summary>
    public string ProjectPath => System.IO.Path.Combine(System.IO.Path.GetFileNameWithoutExtension(Page), Title ?? throw new InvalidOperationException($"{Where} has no title."));
}

/// <summary>
/// Reads the fenced code blocks of Markdown pages. Convention of the pages: <c>```csharp title="Program.cs"</c> is a whole
/// file (compiled by the documentation check), <c>```csharp fragment</c> an excerpt (not compiled); a C# block must say
/// which it is. <c>```json title="appsettings.json"</c> is a file written beside the program.
/// </summary>
internal static partial class MarkdownBlocks
{
    /// <summary>The blocks of one page.</summary>
    /// <param name="page">The page's path (for positions).</param>
    /// <param name="text">The page's text.</param>
    /// <returns>The blocks, in order.</returns>
    public static List<CodeBlock> Parse(string page, string text)
    {
        var blocks = new List<CodeBlock>();
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var open = Fence().Match(lines[i]);
            if (!open.Success)
            {
                continue;
            }

            var fence = open.Groups["fence"].Value;
            var info = open.Groups["info"].Value.Trim();
            var body = new List<string>();
            var j = i + 1;
            for (; j < lines.Length && !(lines[j].TrimStart().StartsWith(fence, StringComparison.Ordinal) && lines[j].Trim().Trim(fence[0]).Length == 0); j++)
            {
                body.Add(lines[j]);
            }

            if (j == lines.Length)
            {
                throw new FormatException($"{Path.GetFileName(page)}:{i + 1}: the code block opened here is never closed.");
            }

            var language = info.Split(' ', 2)[0];
            var title = Title().Match(info) is { Success: true } t ? t.Groups["title"].Value : null;
            var fragment = Regex.IsMatch(info, @"(^|\s)fragment(\s|$)");
            blocks.Add(new CodeBlock(page, i + 1, language, title, fragment, string.Join('\n', body) + "\n"));
            i = j;
        }

        return blocks;
    }

    /// <summary>The problems with the marks of C# blocks: unmarked, marked both ways, or two files of one name.</summary>
    /// <param name="blocks">The blocks of every page.</param>
    /// <returns>One message per problem, naming page and line.</returns>
    public static List<string> MarkProblems(IEnumerable<CodeBlock> blocks)
    {
        var problems = new List<string>();
        var list = blocks.ToList();
        foreach (var b in list.Where(b => b.Language is "csharp" or "cs" or "c#"))
        {
            if (b.Title is null && !b.IsFragment)
            {
                problems.Add($"{b.Where}: a C# block must be marked: ```csharp title=\"File.cs\" (a whole file, compiled) or ```csharp fragment (an excerpt).");
            }
            else if (b.Title is not null && b.IsFragment)
            {
                problems.Add($"{b.Where}: a C# block is either a file (title) or a fragment, not both.");
            }
        }

        foreach (var twin in list.Where(b => b.Title is not null).GroupBy(b => b.ProjectPath, StringComparer.OrdinalIgnoreCase).Where(g => g.Count() > 1))
        {
            problems.Add($"{string.Join(", ", twin.Select(b => b.Where))}: two files named {twin.Key}.");
        }

        return problems;
    }

    [GeneratedRegex("^\\s{0,3}(?<fence>`{3,}|~{3,})(?<info>[^`]*)$")]
    private static partial Regex Fence();

    [GeneratedRegex("title=\"(?<title>[^\"]+)\"")]
    private static partial Regex Title();
}
