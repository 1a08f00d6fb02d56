using System.Text;

namespace Ingestion.Postgres.Sql;

/// <summary>
/// Validates and quotes PostgreSQL identifiers that come from configuration (schema, table, column
/// and view names). Identifiers are never concatenated raw into SQL: they pass through <see cref="Quote"/>.
/// </summary>
public static class PgIdentifier
{
    /// <summary>PostgreSQL truncates identifiers longer than this many bytes (NAMEDATALEN - 1).</summary>
    public const int MaxBytes = 63;

    /// <summary>Checks an identifier: non-empty, at most 63 UTF-8 bytes, no NUL and no control characters.</summary>
    /// <param name="identifier">The identifier.</param>
    /// <param name="what">What it names, for the message (e.g. <c>Ingestion:Sources:tickets:Table</c>).</param>
    /// <returns>The problem, or <see langword="null"/> when it is valid.</returns>
    public static string? Problem(string? identifier, string what)
    {
        if (string.IsNullOrWhiteSpace(identifier))
        {
            return $"{what} is empty.";
        }

        if (Encoding.UTF8.GetByteCount(identifier) > MaxBytes)
        {
            return $"{what} '{identifier}' is longer than {MaxBytes} bytes; PostgreSQL would silently truncate it.";
        }

        foreach (var c in identifier)
        {
            if (char.IsControl(c))
            {
                return $"{what} '{identifier.Replace("\0", "\\0", StringComparison.Ordinal)}' contains a control character.";
            }
        }

        return null;
    }

    /// <summary>Validates an identifier and returns it double-quoted, with embedded quotes doubled.</summary>
    /// <param name="identifier">The identifier.</param>
    /// <param name="what">What it names, for the error message.</param>
    /// <returns>The quoted identifier, e.g. <c>"my ""odd"" name"</c>.</returns>
    /// <exception cref="ArgumentException">The identifier is invalid.</exception>
    public static string Quote(string identifier, string what = "identifier")
    {
        if (Problem(identifier, what) is { } problem)
        {
            throw new ArgumentException(problem, nameof(identifier));
        }

        return "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>Quotes a schema-qualified name.</summary>
    /// <param name="schema">The schema.</param>
    /// <param name="name">The object name.</param>
    /// <returns>The quoted <c>"schema"."name"</c>.</returns>
    /// <exception cref="ArgumentException">Either identifier is invalid.</exception>
    public static string Qualify(string schema, string name) => Quote(schema, "schema name") + "." + Quote(name, "object name");
}
