using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Ingestion.Hosting;

/// <summary>
/// Finds configuration values that cannot become the type of the option they set (an unknown enum name, a word where
/// a number or a duration is expected). The configuration binder leaves such an option at its default without a
/// word, so a typo such as <c>"Misfire": "Sometimes"</c> would silently mean the default policy; these checks turn it
/// into a start-up error that names the setting, its value and what it accepts.
/// </summary>
internal static class ConfigurationValueCheck
{
    private const int MaxDepth = 6;

    /// <summary>Checks every value under <paramref name="section"/> that sets a simple-typed property of <paramref name="optionsType"/>.</summary>
    /// <param name="section">The configuration section bound to the options.</param>
    /// <param name="optionsType">The options class.</param>
    /// <returns>One message per value that does not convert, naming its full configuration path.</returns>
    public static List<string> Check(IConfiguration section, Type optionsType)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(optionsType);
        var errors = new List<string>();
        CheckObject(section, optionsType, errors, 0);
        return errors;
    }

    /// <summary>
    /// The start-up check of options bound from <paramref name="section"/>: the values that do not convert, if any
    /// (the options then hold defaults, so validating them would only mislead), else what <paramref name="validate"/> finds.
    /// </summary>
    /// <param name="section">The bound section, or <see langword="null"/> when the options are not bound from configuration.</param>
    /// <param name="optionsType">The options class.</param>
    /// <param name="validate">Validates the bound options.</param>
    /// <returns>The problems; empty when there are none.</returns>
    public static IEnumerable<string> ThenValidate(IConfiguration? section, Type optionsType, Func<IEnumerable<string>> validate) =>
        ThenValidate(section is null ? [] : [section], optionsType, validate);

    /// <summary>The start-up check of options bound from several sections in turn (see <see cref="SourceConfiguration"/>).</summary>
    /// <param name="sections">The bound sections, in binding order.</param>
    /// <param name="optionsType">The options class.</param>
    /// <param name="validate">Validates the bound options.</param>
    /// <returns>The problems; empty when there are none.</returns>
    public static IEnumerable<string> ThenValidate(IReadOnlyList<IConfiguration> sections, Type optionsType, Func<IEnumerable<string>> validate)
    {
        ArgumentNullException.ThrowIfNull(sections);
        ArgumentNullException.ThrowIfNull(validate);
        var unreadable = sections.SelectMany(s => Check(s, optionsType)).ToList();
        return unreadable.Count > 0 ? unreadable : validate();
    }

    private static void CheckObject(IConfiguration section, Type type, List<string> errors, int depth)
    {
        if (depth > MaxDepth)
        {
            return;
        }

        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0)
            {
                continue;
            }

            var child = section.GetSection(property.Name);
            CheckValue(child, property.PropertyType, errors, depth);
        }
    }

    private static void CheckValue(IConfigurationSection child, Type type, List<string> errors, int depth)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        if (IsSimple(target))
        {
            if (child.Value is { } value && !(value.Length == 0 && Nullable.GetUnderlyingType(type) is not null) && !Converts(target, value))
            {
                errors.Add($"{child.Path} '{value}' is not a valid {Describe(target)}.");
            }

            return;
        }

        if (target == typeof(string) || target == typeof(object))
        {
            return;
        }

        if (DictionaryValueType(target) is { } valueType)
        {
            foreach (var entry in child.GetChildren())
            {
                CheckValue(entry, valueType, errors, depth + 1);
            }

            return;
        }

        if (ListElementType(target) is { } elementType)
        {
            // A list binds from children named 0, 1, 2...: each element is checked like a property, so
            // Sources:x:Columns:1:Type 'Integer' is named as such instead of leaving that column at its default.
            foreach (var element in child.GetChildren())
            {
                CheckValue(element, elementType, errors, depth + 1);
            }

            return;
        }

        if (target.IsClass && !typeof(System.Collections.IEnumerable).IsAssignableFrom(target) && child.Exists())
        {
            CheckObject(child, target, errors, depth + 1);
        }
    }

    private static bool IsSimple(Type t) =>
        t.IsPrimitive || t.IsEnum || t == typeof(decimal) || t == typeof(TimeSpan) || t == typeof(DateTime)
        || t == typeof(DateTimeOffset) || t == typeof(Guid) || t == typeof(Uri) || t == typeof(TimeOnly) || t == typeof(DateOnly);

    private static bool Converts(Type t, string value)
    {
        if (t.IsEnum)
        {
            // The binder accepts a defined name (any case) or a number; a number outside the enum is left to the options' own validation.
            return Enum.TryParse(t, value.Trim(), ignoreCase: true, out var parsed)
                && (Enum.IsDefined(t, parsed!) || long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _));
        }

        try
        {
            _ = TypeDescriptor.GetConverter(t).ConvertFromInvariantString(value);
            return true;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or OverflowException or NotSupportedException or UriFormatException)
        {
            return false;
        }
    }

    private static string Describe(Type t) => t switch
    {
        _ when t.IsEnum => $"{t.Name} (one of {string.Join(", ", Enum.GetNames(t))})",
        _ when t == typeof(TimeSpan) => "duration (e.g. 00:05:00 for five minutes, 1.00:00:00 for one day)",
        _ when t == typeof(bool) => "boolean (true or false)",
        _ when t == typeof(int) || t == typeof(long) || t == typeof(short) => $"whole number (range {IntegerRange(t)})",
        _ when t == typeof(double) || t == typeof(float) || t == typeof(decimal) => "number (invariant culture, e.g. 0.5)",
        _ when t == typeof(Uri) => "URI",
        _ => t.Name,
    };

    private static string IntegerRange(Type t) => t == typeof(int)
        ? $"{int.MinValue}..{int.MaxValue}"
        : t == typeof(short) ? $"{short.MinValue}..{short.MaxValue}" : $"{long.MinValue}..{long.MaxValue}";

    private static Type? ListElementType(Type t)
    {
        if (t.IsArray)
        {
            return t.GetElementType();
        }

        foreach (var i in t.IsInterface ? [t, .. t.GetInterfaces()] : t.GetInterfaces())
        {
            if (i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IEnumerable<>))
            {
                return i.GetGenericArguments()[0];
            }
        }

        return null;
    }

    private static Type? DictionaryValueType(Type t)
    {
        foreach (var i in t.IsInterface ? [t, .. t.GetInterfaces()] : t.GetInterfaces())
        {
            if (i.IsGenericType && (i.GetGenericTypeDefinition() == typeof(IDictionary<,>) || i.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>))
                && i.GetGenericArguments()[0] == typeof(string))
            {
                return i.GetGenericArguments()[1];
            }
        }

        return null;
    }
}
