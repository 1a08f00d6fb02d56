using System.Reflection;
using DiffPlex.Renderer;
using PublicApiGenerator;

namespace Ingestion.ApiApproval;

/// <summary>
/// The public API of every shipped package (every src/ project) equals its approved listing in <c>approved/</c>,
/// written by PublicApiGenerator. A change fails with a diff; a deliberate one is approved with
/// <c>bash scripts/approve-api.sh</c> (which reruns this test with <c>INGESTION_APPROVE_API=1</c>) and the rewritten
/// listings are committed, so reviewers see the change.
/// </summary>
public sealed class PublicApiApprovalTests
{
    private static readonly ApiGeneratorOptions Options = new()
    {
        // Which test projects see internals is not API.
        ExcludeAttributes = ["System.Runtime.CompilerServices.InternalsVisibleToAttribute"],
    };

    public static TheoryData<string> Packages() => new(SourceProjects());

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ingestion.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Ingestion.sln not found.");
    }

    private static IEnumerable<string> SourceProjects() =>
        Directory.GetDirectories(Path.Combine(RepoRoot(), "src"))
            .Where(d => File.Exists(Path.Combine(d, Path.GetFileName(d) + ".csproj")))
            .Select(d => Path.GetFileName(d)!)
            .Order(StringComparer.Ordinal);

    [Theory]
    [MemberData(nameof(Packages))]
    public void The_public_api_matches_the_approved_listing(string package)
    {
        Assembly assembly;
        try
        {
            assembly = Assembly.Load(package);
        }
        catch (FileNotFoundException)
        {
            Assert.Fail($"src/{package} is a shipped package, but tests/Ingestion.ApiApproval does not reference it: add <ProjectReference Include=\"../../src/{package}/{package}.csproj\" /> to Ingestion.ApiApproval.csproj, then run bash scripts/approve-api.sh.");
            return;
        }

        var actual = Normalize(assembly.GeneratePublicApi(Options));
        var path = Path.Combine(RepoRoot(), "tests", "Ingestion.ApiApproval", "approved", package + ".txt");
        if (Environment.GetEnvironmentVariable("INGESTION_APPROVE_API") == "1")
        {
            File.WriteAllText(path, actual);
            return;
        }

        var approved = File.Exists(path) ? Normalize(File.ReadAllText(path)) : string.Empty;
        if (approved == actual)
        {
            return;
        }

        Assert.Fail(Mismatch(package, approved, actual, File.Exists(path)));
    }

    /// <summary>The failure message: which listing, a unified diff from approved to actual, and how to approve.</summary>
    internal static string Mismatch(string package, string approved, string actual, bool listingExists)
    {
        var note = package == "Ingestion.Abstractions"
            ? $"\nThis is the plug-in contract: a removed or changed member breaks plug-ins built against contract {IngestionContract.MajorVersion} and needs a new major version (IngestionContract.MajorVersion and the assembly version).\n"
            : string.Empty;
        var diff = new UnidiffRenderer(contextLines: 3).Generate(approved, actual, "approved", "actual", ignoreWhitespace: false, ignoreCase: false);
        return $"The public API of {package} is not the approved one (tests/Ingestion.ApiApproval/approved/{package}.txt{(listingExists ? string.Empty : ", missing")}).\n" +
            $"{diff}{note}\n" +
            "If the change is deliberate, run: bash scripts/approve-api.sh  and commit the listings it rewrites.";
    }

    [Fact]
    public void A_mismatch_shows_the_changed_member_as_a_diff_and_the_approval_command()
    {
        var approved = "namespace A\n{\n    public class C\n    {\n        public void Run(int count) { }\n    }\n}\n";
        var message = Mismatch("Ingestion.Core", approved, approved.Replace("int count", "long count", StringComparison.Ordinal), listingExists: true);
        Assert.Contains("\n-        public void Run(int count) { }", message, StringComparison.Ordinal);
        Assert.Contains("\n+        public void Run(long count) { }", message, StringComparison.Ordinal);
        Assert.Contains("bash scripts/approve-api.sh", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_listing_belongs_to_a_shipped_package()
    {
        var packages = SourceProjects().ToHashSet(StringComparer.Ordinal);
        var stale = Directory.GetFiles(Path.Combine(RepoRoot(), "tests", "Ingestion.ApiApproval", "approved"), "*.txt")
            .Select(Path.GetFileNameWithoutExtension)
            .Where(name => !packages.Contains(name!))
            .ToList();
        Assert.True(stale.Count == 0, $"Approved listings of packages that are no longer in src/: {string.Join(", ", stale)}; delete them.");
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n') + "\n";
}
