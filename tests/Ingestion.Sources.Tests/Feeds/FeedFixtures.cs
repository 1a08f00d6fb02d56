namespace Ingestion.Sources.Tests.Feeds;

/// <summary>Finds the fixture files of this test project in its source folder (no copy step needed).</summary>
internal static class FeedFixtures
{
    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Ingestion.Sources.Tests");
            if (Directory.Exists(Path.Combine(candidate, "Feeds", "Fixtures")))
            {
                return candidate;
            }

            if (Directory.Exists(Path.Combine(dir.FullName, "Feeds", "Fixtures")) && File.Exists(Path.Combine(dir.FullName, "Ingestion.Sources.Tests.csproj")))
            {
                return dir.FullName;
            }
        }

        throw new DirectoryNotFoundException("The fixtures of Ingestion.Sources.Tests were not found above " + AppContext.BaseDirectory);
    });

    public static string PathOf(string relative) => Path.Combine(Root.Value, relative);

    public static byte[] Bytes(string relative) => File.ReadAllBytes(PathOf(relative));

    public static string Feed(string name) => PathOf(Path.Combine("Feeds", "Fixtures", name));

    public static string Calendar(string name) => PathOf(Path.Combine("Ics", "Fixtures", name));
}
