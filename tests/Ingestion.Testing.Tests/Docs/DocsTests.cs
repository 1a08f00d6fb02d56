using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Ingestion.Testing.Tests.Packaging;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;

namespace Ingestion.Testing.Tests.Docs;

/// <summary>
/// The documentation is code that is built and run: every C# block of README.md and docs/*.md marked as a file
/// (<c>```csharp title="X.cs"</c>) is compiled, as written, into one fresh console project that references the packed
/// packages and the packages the pages tell the reader to add; then the README host runs against PostgreSQL and a
/// real HTTP server, imports, and exits non-zero once its source fails.
/// </summary>
[Collection(PackedPackagesCollection.Name)]
public sealed partial class DocsTests(PostgresDatabase database, PackedPackages packed) : IClassFixture<PostgresDatabase>
{
    private static List<CodeBlock> AllBlocks(string root) =>
        new[] { Path.Combine(root, "README.md") }
            .Concat(Directory.GetFiles(Path.Combine(root, "docs"), "*.md").Order(StringComparer.Ordinal))
            .SelectMany(page => MarkdownBlocks.Parse(page, File.ReadAllText(page)))
            .ToList();

    [Fact]
    public void Every_csharp_block_of_the_pages_is_marked_as_a_file_or_a_fragment()
    {
        var blocks = AllBlocks(Processes.RepoRoot());
        var problems = MarkdownBlocks.MarkProblems(blocks);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        Assert.Contains(blocks, b => b is { Title: "Program.cs" } && b.Page.EndsWith("README.md", StringComparison.Ordinal));
        Assert.Contains(blocks, b => b is { Title: "RadarsSource.cs" } && b.Page.EndsWith("README.md", StringComparison.Ordinal));
    }

    [Fact]
    public void The_mark_check_names_an_unmarked_block_and_two_files_of_one_name()
    {
        var blocks = MarkdownBlocks.Parse("/x/docs/page.md", """
            # Page

            ```csharp
            var x = 1;
            ```

            ````csharp title="A.cs"
            // ```csharp inside a longer fence is text
            ````

            ```csharp title="A.cs"
            class A { }
            ```

            ```csharp fragment
            x++;
            ```
            """);
        Assert.Equal([3, 7, 11, 15], blocks.Select(b => b.Line));
        Assert.Equal("// ```csharp inside a longer fence is text\n", blocks[1].Code);
        var problems = MarkdownBlocks.MarkProblems(blocks);
        Assert.Equal(2, problems.Count);
        Assert.StartsWith("page.md:3: a C# block must be marked", problems[0], StringComparison.Ordinal);
        Assert.Equal("page.md:7, page.md:11: two files named page/A.cs.", problems[1]);
    }

    [Fact]
    public async Task The_file_blocks_build_against_the_packed_packages_and_the_readme_host_imports_then_fails_with_exit_code_1()
    {
        var root = packed.Root;
        var blocks = AllBlocks(root);
        Assert.Empty(MarkdownBlocks.MarkProblems(blocks));
        var project = Directory.CreateTempSubdirectory("ingestion-docs-").FullName;
        try
        {
            WriteProject(project, blocks, Packages(root, blocks));
            Processes.Run("dotnet", project, "build", "-c", "Release", "-nologo", "-v", "q", "-nodeReuse:false", "-p:UseSharedCompilation=false");
            var assets = File.ReadAllText(Path.Combine(project, "obj", "project.assets.json"));
            Assert.Contains($"\"Ingestion.Postgres/{packed.Version}\"", assets, StringComparison.Ordinal);

            // A paged radar API: two pages (one item without an id), then an empty page; anything else is 404.
            await using var api = await TestHttpServer.StartAsync(ctx =>
            {
                var page = ctx.Request.Query["page"].ToString();
                if (ctx.Request.Path != "/radars" || page is not ("0" or "1" or "2"))
                {
                    ctx.Response.StatusCode = 404;
                    return Task.CompletedTask;
                }

                ctx.Response.ContentType = "application/json";
                return ctx.Response.WriteAsync(page switch
                {
                    "0" => """[{"id":"r1","road":"A-20","limit":100},{"id":"r2","road":"R-132","limit":70}]""",
                    "1" => """[{"id":"r3","road":"A-40","limit":100},{"id":null,"road":"A-15","limit":100}]""",
                    _ => "[]",
                });
            });

            var program = Path.Combine(project, "bin", "Release", "net10.0", "DocSnippets.dll");
            var environment = new Dictionary<string, string>
            {
                ["ConnectionStrings__Ingestion"] = database.ConnectionString,
                ["Ingestion__Sources__speed_radars__Url"] = api.Url("radars").ToString(),
            };
            var (exitCode, output) = Processes.RunAny("dotnet", project, environment, program);
            Assert.True(exitCode == 0, $"the README host exited {exitCode}:\n{output}");
            Assert.Contains("speed-radars: PartiallySucceeded", output, StringComparison.Ordinal);
            Assert.DoesNotContain("Npgsql.Command", output, StringComparison.Ordinal);
            Assert.Equal(3L, await database.ScalarAsync<long>("SELECT count(*) FROM speed_radars"));
            Assert.Equal(100, await database.ScalarAsync<int>("SELECT speed_limit FROM speed_radars WHERE id = 'r3'"));
            Assert.Equal("missing id", await database.ScalarAsync<string>("SELECT reason FROM ingestion.rejected_records"));

            // The API now answers 404: the source fails and the host says so with its exit code.
            environment["Ingestion__Sources__speed_radars__Url"] = api.Url("gone").ToString();
            (exitCode, output) = Processes.RunAny("dotnet", project, environment, program);
            Assert.True(exitCode == 1, $"the README host exited {exitCode} after a failed source:\n{output}");
            Assert.Contains("speed-radars: Failed", output, StringComparison.Ordinal);
        }
        finally
        {
            try
            {
                Directory.Delete(project, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>The packages the pages add (<c>dotnet add package X</c>): Ingestion's at the packed version, others at the repository's pinned version.</summary>
    private Dictionary<string, string> Packages(string root, List<CodeBlock> blocks)
    {
        var pinned = XDocument.Load(Path.Combine(root, "Directory.Packages.props")).Descendants("PackageVersion")
            .ToDictionary(e => (string)e.Attribute("Include")!, e => (string)e.Attribute("Version")!, StringComparer.OrdinalIgnoreCase);
        var packages = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (Match m in blocks.Where(b => b.Language is "bash" or "sh" or "shell").SelectMany(b => AddPackage().Matches(b.Code)))
        {
            var name = m.Groups["name"].Value;
            packages[name] = name.StartsWith("Ingestion.", StringComparison.Ordinal) ? packed.Version
                : pinned.TryGetValue(name, out var v) ? v
                : throw new InvalidOperationException($"The pages add package {name}, which Directory.Packages.props does not pin.");
        }

        Assert.Contains("Microsoft.Extensions.Hosting", packages.Keys);
        Assert.Contains("Ingestion.Postgres", packages.Keys);
        return packages;
    }

    /// <summary>
    /// A console project as <c>dotnet new console</c> makes it (implicit usings, nullable), warnings as errors, no repository
    /// props; each file block under a folder named after its page, starting with a #line directive so that a compile
    /// error names the page and its line.
    /// </summary>
    private void WriteProject(string project, List<CodeBlock> blocks, Dictionary<string, string> packages)
    {
        packed.WriteConsoleProject(project, "DocSnippets", packages, warningsAsErrors: true);
        foreach (var block in blocks.Where(b => b.Title is not null && !b.IsFragment))
        {
            if (block.Language is "csharp" or "cs" or "c#")
            {
                var path = Path.Combine(project, block.ProjectPath);
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllText(path, $"#line {block.Line + 1} \"{block.Page}\"\n{block.Code}", Encoding.UTF8);
            }
            else if (block.Language == "json")
            {
                File.WriteAllText(Path.Combine(project, block.Title!), block.Code, Encoding.UTF8);
            }
        }
    }

    [GeneratedRegex(@"dotnet add package (?<name>[A-Za-z0-9_.]+)")]
    private static partial Regex AddPackage();
}
