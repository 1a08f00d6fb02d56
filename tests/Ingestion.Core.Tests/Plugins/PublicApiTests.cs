using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

namespace Ingestion.Core.Tests.Plugins;

/// <summary>
/// Guards the plug-in contract against accidental breaking changes: the public surface of Ingestion.Abstractions
/// must equal the approved listing in PublicApi/. A deliberate change is approved by running the tests with
/// INGESTION_APPROVE_API=1 (which rewrites the listing) and committing the diff, where reviewers see it.
/// </summary>
public sealed class PublicApiTests
{
    [Fact]
    public void The_contract_matches_its_approved_public_api()
    {
        var assembly = typeof(IIngestionPlugin).Assembly;
        var approvedPath = Path.Combine(PluginFixtures.FindRepoRoot(), "tests", "Ingestion.Core.Tests", "Plugins", "PublicApi", "Ingestion.Abstractions.approved.txt");
        var actual = PublicApi.Describe(assembly);
        if (Environment.GetEnvironmentVariable("INGESTION_APPROVE_API") == "1")
        {
            File.WriteAllText(approvedPath, actual);
        }

        var approved = File.Exists(approvedPath) ? File.ReadAllText(approvedPath) : string.Empty;
        var approvedLines = approved.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        var actualLines = actual.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        var removed = approvedLines.Except(actualLines).Order(StringComparer.Ordinal).ToList();
        var added = actualLines.Except(approvedLines).Order(StringComparer.Ordinal).ToList();
        Assert.True(
            removed.Count == 0 && added.Count == 0,
            $"The public API of {assembly.GetName().Name} changed.\n" +
            (removed.Count > 0 ? $"Removed or changed (breaks plug-ins built against contract {IngestionContract.MajorVersion}; a breaking change needs a new major version):\n  {string.Join("\n  ", removed)}\n" : string.Empty) +
            (added.Count > 0 ? $"Added:\n  {string.Join("\n  ", added)}\n" : string.Empty) +
            $"If the change is deliberate, run the tests with INGESTION_APPROVE_API=1 and commit {approvedPath}.");
    }

    [Fact]
    public void The_listing_sees_signature_changes()
    {
        var listing = PublicApi.Describe(typeof(PublicApiTests).Assembly);
        Assert.Contains("class Ingestion.Core.Tests.Plugins.PublicApiSample", listing, StringComparison.Ordinal);
        Assert.Contains("  method public System.Threading.Tasks.Task<System.Int32> Run(System.String name, System.Threading.CancellationToken cancellationToken = default)", listing, StringComparison.Ordinal);
        Assert.Contains("  property public System.Collections.Generic.IReadOnlyList<System.String> Names { get; init; }", listing, StringComparison.Ordinal);
        Assert.Contains("  field public const System.Int32 Limit = 3", listing, StringComparison.Ordinal);
        Assert.DoesNotContain("Hidden", listing, StringComparison.Ordinal);
    }
}

public class PublicApiSample
{
    public const int Limit = 3;

    public IReadOnlyList<string> Names { get; init; } = [];

    public Task<int> Run(string name, CancellationToken cancellationToken = default) => Task.FromResult(name.Length);

    internal void Hidden()
    {
    }
}

/// <summary>Writes the public surface of an assembly as sorted lines of text.</summary>
internal static class PublicApi
{
    public static string Describe(Assembly assembly)
    {
        var text = new StringBuilder();
        foreach (var type in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            text.Append(TypeHeader(type)).Append('\n');
            foreach (var line in Members(type).Order(StringComparer.Ordinal))
            {
                text.Append("  ").Append(line).Append('\n');
            }
        }

        return text.ToString();
    }

    private static string TypeHeader(Type type)
    {
        var kind = type.IsInterface ? "interface" : type.IsEnum ? "enum" : type.IsValueType ? "struct" : typeof(Delegate).IsAssignableFrom(type) ? "delegate" : "class";
        var modifiers = type is { IsClass: true, IsAbstract: true, IsSealed: true } ? "static " : type is { IsClass: true, IsAbstract: true } ? "abstract " : type is { IsClass: true, IsSealed: true } ? "sealed " : string.Empty;
        var bases = new List<string>();
        if (type.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum))
        {
            bases.Add(Name(b));
        }

        bases.AddRange(type.GetInterfaces().Select(Name).Order(StringComparer.Ordinal));
        return $"{modifiers}{kind} {Name(type)}{(bases.Count > 0 ? " : " + string.Join(", ", bases) : string.Empty)}";
    }

    private static IEnumerable<string> Members(Type type)
    {
        const BindingFlags flags = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        foreach (var field in type.GetFields(flags).Where(f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly))
        {
            if (type.IsEnum && field.IsSpecialName)
            {
                continue;
            }

            var value = field.IsLiteral ? $" = {field.GetRawConstantValue()}" : string.Empty;
            yield return $"field {Access(field.IsPublic)} {(field.IsLiteral ? "const " : field.IsStatic ? "static " : string.Empty)}{(field.IsInitOnly ? "readonly " : string.Empty)}{Name(field.FieldType)} {field.Name}{value}";
        }

        foreach (var ctor in type.GetConstructors(flags).Where(c => c.IsPublic || c.IsFamily || c.IsFamilyOrAssembly))
        {
            yield return $"ctor {Access(ctor.IsPublic)} ({Parameters(ctor)})";
        }

        foreach (var property in type.GetProperties(flags))
        {
            var get = property.GetMethod is { } g && (g.IsPublic || g.IsFamily || g.IsFamilyOrAssembly) ? g : null;
            var set = property.SetMethod is { } s && (s.IsPublic || s.IsFamily || s.IsFamilyOrAssembly) ? s : null;
            if (get is null && set is null)
            {
                continue;
            }

            var accessor = get ?? set!;
            var init = set is not null && set.ReturnParameter.GetRequiredCustomModifiers().Any(m => m == typeof(IsExternalInit));
            var index = property.GetIndexParameters() is { Length: > 0 } ix ? $"[{string.Join(", ", ix.Select(p => $"{Name(p.ParameterType)} {p.Name}"))}]" : string.Empty;
            yield return $"property {Access(accessor.IsPublic)} {Modifiers(accessor, type)}{Name(property.PropertyType)} {property.Name}{index} {{ {(get is not null ? "get; " : string.Empty)}{(set is not null ? init ? "init; " : "set; " : string.Empty)}}}";
        }

        foreach (var evt in type.GetEvents(flags).Where(e => e.AddMethod is { } a && (a.IsPublic || a.IsFamily)))
        {
            yield return $"event {Access(evt.AddMethod!.IsPublic)} {Name(evt.EventHandlerType!)} {evt.Name}";
        }

        foreach (var method in type.GetMethods(flags).Where(m => !m.IsSpecialName && (m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly)))
        {
            var generic = method.IsGenericMethodDefinition ? $"<{string.Join(", ", method.GetGenericArguments().Select(a => a.Name))}>" : string.Empty;
            var constraints = method.IsGenericMethodDefinition ? Constraints(method.GetGenericArguments()) : string.Empty;
            yield return $"method {Access(method.IsPublic)} {Modifiers(method, type)}{Name(method.ReturnType)} {method.Name}{generic}({Parameters(method)}){constraints}";
        }
    }

    private static string Access(bool isPublic) => isPublic ? "public" : "protected";

    private static string Modifiers(MethodInfo method, Type owner) =>
        method.IsStatic ? "static "
        : owner.IsInterface ? (method.IsAbstract ? string.Empty : "default ")
        : method.IsAbstract ? "abstract "
        : method.IsVirtual && !method.IsFinal ? (method.GetBaseDefinition().DeclaringType == owner ? "virtual " : "override ")
        : method.IsVirtual && method.GetBaseDefinition().DeclaringType != owner ? "override sealed "
        : string.Empty;

    private static string Constraints(Type[] arguments) => string.Concat(arguments.Select(a =>
    {
        var parts = new List<string>();
        if (a.GenericParameterAttributes.HasFlag(GenericParameterAttributes.ReferenceTypeConstraint))
        {
            parts.Add("class");
        }

        if (a.GenericParameterAttributes.HasFlag(GenericParameterAttributes.NotNullableValueTypeConstraint))
        {
            parts.Add("struct");
        }

        parts.AddRange(a.GetGenericParameterConstraints().Where(c => c != typeof(ValueType)).Select(Name));
        if (a.GenericParameterAttributes.HasFlag(GenericParameterAttributes.DefaultConstructorConstraint) && !a.GenericParameterAttributes.HasFlag(GenericParameterAttributes.NotNullableValueTypeConstraint))
        {
            parts.Add("new()");
        }

        return parts.Count > 0 ? $" where {a.Name} : {string.Join(", ", parts)}" : string.Empty;
    }));

    private static string Parameters(MethodBase method) => string.Join(", ", method.GetParameters().Select(p =>
    {
        var type = p.ParameterType;
        var prefix = type.IsByRef ? (p.IsOut ? "out " : p.IsIn ? "in " : "ref ") : p.GetCustomAttributes(typeof(ParamArrayAttribute), false).Length > 0 ? "params " : string.Empty;
        var name = Name(type.IsByRef ? type.GetElementType()! : type);
        var optional = p.HasDefaultValue ? $" = {(p.DefaultValue is null ? "default" : p.DefaultValue is string s ? $"\"{s}\"" : p.DefaultValue)}" : string.Empty;
        return $"{prefix}{name} {p.Name}{optional}";
    }));

    private static string Name(Type type)
    {
        if (type.IsGenericParameter)
        {
            return type.Name;
        }

        if (type.IsArray)
        {
            return Name(type.GetElementType()!) + "[]";
        }

        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            return Name(underlying) + "?";
        }

        var name = type.IsNested ? $"{Name(type.DeclaringType!)}.{type.Name}" : $"{type.Namespace}.{type.Name}";
        if (!type.IsGenericType)
        {
            return name;
        }

        var tick = name.IndexOf('`', StringComparison.Ordinal);
        return $"{(tick >= 0 ? name[..tick] : name)}<{string.Join(", ", type.GetGenericArguments().Select(Name))}>";
    }
}
