using Ingestion.Running;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace Ingestion.AspNetCore.Tests.Dashboard;

/// <summary>The dashboard in a real headless Chromium against a real host and database.</summary>
public class DashboardChromiumTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private static readonly string ImagesDirectory = Path.Combine(RepositoryRoot(), "docs", "images");

    private static void SampleLikeSources(IIngestionBuilder b)
    {
        // city-events: 12 events; from its second run on, 3 of them change.
        // One instance for every run, so it counts its runs.
        var cityEvents = new ItemSource(run => ItemSource.Rows(12).Select(i => run > 1 && i.Id is "i0001" or "i0002" or "i0003" ? new Item { Id = i.Id, Value = run } : i));
        b.AddSource("city-events", _ => cityEvents, o =>
        {
            o.Table = "city_events";
            o.CreateTable = true;
        });

        // bike-paths: 8 paths, 2 of them with a note the table cannot hold (rejected with their position and field).
        b.AddSource("bike-paths", _ => new ItemSource(_ => ItemSource.Rows(8).Select(i => i.Id is "i0004" or "i0007" ? new Item { Id = i.Id, Value = 1, Note = "bad\0note" } : i)), o =>
        {
            o.Table = "bike_paths";
            o.CreateTable = true;
            o.MaxRejected = 10;
        });

        b.AddSource("radars-wfs", _ => new FailingSource("The WFS server answered 503 Service Unavailable for GetFeature (typeName=radars)."), o =>
        {
            o.Table = "radars";
            o.CreateTable = true;
        });
    }

    [ChromiumFact]
    public async Task The_page_lists_the_jobs_a_run_now_click_adds_a_run_with_its_counts_and_a_write_without_authorization_is_refused()
    {
        await using var app = await IngestionWebApp.StartAsync(db, SampleLikeSources);
        var runner = app.Services.GetRequiredService<IIngestionRunner>();
        foreach (var source in new[] { "city-events", "bike-paths", "radars-wfs" })
        {
            await runner.RunAsync(source, new RunRequest { Trigger = "schedule" }, default);
        }

        Assertions.SetDefaultExpectTimeout(15_000);
        var (playwright, browser) = await Chromium.LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        var dashboardUrl = new Uri(app.BaseAddress, "ingestion/").ToString();

        // Signed in as an operator: the jobs of the three sources, failed and partial rows highlighted with their error.
        await using var operatorContext = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            ExtraHTTPHeaders = new Dictionary<string, string> { ["X-Test-User"] = "olivia", ["X-Test-Role"] = "operator" },
            ViewportSize = new ViewportSize { Width = 1280, Height = 900 },
        });
        var page = await operatorContext.NewPageAsync();
        page.SetDefaultTimeout(15_000);
        await page.GotoAsync(dashboardUrl);
        var jobRows = page.Locator("#jobs tbody tr[data-job]");
        await Assertions.Expect(jobRows).ToHaveCountAsync(3);
        await Assertions.Expect(page.Locator("#jobs tr.failed[data-source='radars-wfs'] .error")).ToContainTextAsync("503 Service Unavailable");
        await Assertions.Expect(page.Locator("#jobs tr.partial[data-source='bike-paths']")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator(".card[data-source='city-events'] svg rect.bar-created")).ToHaveCountAsync(1);

        // Run now: a new city-events job with trigger http and its counts (3 updated, 9 unchanged).
        await page.Locator(".card[data-source='city-events'] button.run-now").ClickAsync();
        var newRun = page.Locator("#jobs tbody tr[data-source='city-events']").First;
        await Assertions.Expect(newRun.Locator("td.updated")).ToHaveTextAsync("3");
        await Assertions.Expect(newRun.Locator("td.unchanged")).ToHaveTextAsync("9");
        await Assertions.Expect(newRun).ToContainTextAsync("http (olivia)");
        await Assertions.Expect(jobRows).ToHaveCountAsync(4);
        await Assertions.Expect(page.Locator(".card[data-source='city-events'] svg rect.bar-updated")).ToHaveCountAsync(1);
        Directory.CreateDirectory(ImagesDirectory);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ImagesDirectory, "dashboard.png"), FullPage = true });

        // The job page of the partial run lists its rejected records with position, field and reason.
        await page.Locator("#jobs tr[data-source='bike-paths'] a").ClickAsync();
        await Assertions.Expect(page.Locator("#rejected tbody tr")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#rejected tbody")).ToContainTextAsync("note");
        await Assertions.Expect(page.Locator("#job-details")).ToContainTextAsync("PartiallySucceeded");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ImagesDirectory, "job.png"), FullPage = true });

        // Not signed in: the page reads, but its run-now click is refused and nothing runs.
        await using var anonymousContext = await browser.NewContextAsync();
        var anonymous = await anonymousContext.NewPageAsync();
        anonymous.SetDefaultTimeout(15_000);
        await anonymous.GotoAsync(dashboardUrl);
        await Assertions.Expect(anonymous.Locator("#jobs tbody tr[data-job]")).ToHaveCountAsync(4);
        await anonymous.Locator(".card[data-source='bike-paths'] button.run-now").ClickAsync();
        await Assertions.Expect(anonymous.Locator("#message.error")).ToContainTextAsync("401");
        Assert.Equal(1L, await db.ScalarAsync<long>("SELECT count(*) FROM ingestion.import_jobs WHERE source = 'bike-paths'"));
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Ingestion.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Ingestion.sln above {AppContext.BaseDirectory}.");
    }
}
