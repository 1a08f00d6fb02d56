using System.Collections.Concurrent;
using System.Text.Json;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.Running;
using Ingestion.Sources.JsonApi;
using Ingestion.Sources.Mapping;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Ingestion.Sources.Tests.Http;

/// <summary>
/// Secrets are masked by value: a canary in a query parameter of an unusual name, in a URL path segment and in a
/// header never appears in a log line, the job row, a rejected record or the error, even when the server echoes
/// them back in its data and its error page.
/// </summary>
public sealed class SecretRedactionEndToEndTests(PostgresDatabase db) : IClassFixture<PostgresDatabase>
{
    private const string QueryCanary = "CanaryQ7f3e9a21";
    private const string PathCanary = "CanaryP4b8c0d55";
    private const string HeaderCanary = "CanaryH2e6f1c88";

    [Fact]
    public async Task Canary_secrets_appear_nowhere()
    {
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            // The server echoes what it received (URL and header), as many error pages and some APIs do.
            var echo = $"{ctx.Request.Path}{ctx.Request.QueryString} auth={ctx.Request.Headers["X-Partner-Auth"]}";
            if (ctx.Request.Query["page"] == "1")
            {
                ctx.Response.ContentType = "application/json";
                await ctx.Response.WriteAsync(JsonSerializer.Serialize(new { data = new object[] { new { id = "a", n = 1 }, new { id = "b", n = echo } } }));
                return;
            }

            ctx.Response.StatusCode = 400;
            ctx.Response.ContentType = "text/plain";
            await ctx.Response.WriteAsync($"bad request: {echo} key {QueryCanary} path {PathCanary}");
        });

        var logs = new CapturingLoggerProvider();
        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Trace).AddProvider(logs));
        services.AddIngestion().UsePostgres(o => o.ConnectionString = db.ConnectionString).AddJsonApiSource("partner", o =>
        {
            o.Url = server.Url($"v1/{PathCanary}/items?zq_cred={QueryCanary}").AbsoluteUri;
            o.Pagination = JsonApiPagination.PageNumber;
            o.ItemsPath = "data";
            o.PageSize = 2;
            o.Columns.Add(new ColumnMappingOptions { Name = "id" });
            o.Columns.Add(new ColumnMappingOptions { Name = "n", Type = ColumnType.Int32 });
            o.Key.Add("id");
            o.Http.SecretQueryParameters.Add("zq_cred");
            o.Http.SecretPathSegments.Add(1);
            o.Http.Headers["X-Partner-Auth"] = HeaderCanary;
            o.Http.SecretHeaders.Add("X-Partner-Auth");
            o.Http.MaxRetryAttempts = 0;
        }, s =>
        {
            s.Table = "partner_items";
            s.CreateTable = true;
            s.MaxRejected = 10;
            s.MaxRetryAttempts = 0;
            s.BatchSize = 1;
        });
        await using var sp = services.BuildServiceProvider();
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("partner", null, default);

        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.True(result.Counts.Rejected >= 1, "the echoed record should have been rejected");
        var texts = new List<(string Where, string? Text)> { ("result error", result.Error?.ToString()) };
        texts.AddRange(logs.Lines.Select(l => ("log", (string?)l)));
        await using (var cmd = db.DataSource.CreateCommand("SELECT concat_ws(' | ', error, source, host, mode, trigger) FROM ingestion.import_jobs"))
        await using (var reader = await cmd.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                texts.Add(("job row", reader.GetString(0)));
            }
        }

        var rejected = 0;
        await using (var cmd = db.DataSource.CreateCommand("SELECT concat_ws(' | ', position, field, reason, raw_value) FROM ingestion.rejected_records"))
        await using (var reader = await cmd.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                rejected++;
                texts.Add(("rejected record", reader.GetString(0)));
            }
        }

        Assert.True(rejected >= 1, "a rejected record should have been stored");
        Assert.NotEmpty(logs.Lines);
        Assert.Contains(texts, t => t.Where == "job row" && t.Text!.Contains("***", StringComparison.Ordinal));
        foreach (var canary in new[] { QueryCanary, PathCanary, HeaderCanary })
        {
            var hits = texts.Where(t => t.Text?.Contains(canary, StringComparison.Ordinal) == true).ToList();
            Assert.True(hits.Count == 0, $"{canary} leaked in:\n{string.Join("\n", hits.Select(h => $"[{h.Where}] {h.Text}"))}");
        }
    }

    /// <summary>Keeps every formatted log line, with its exception text, at every level.</summary>
    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _lines = new();

        public IReadOnlyCollection<string> Lines => _lines;

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _lines);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<string> lines) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join(", ", pairs.Select(p => $"{p.Key}={p.Value}")) : string.Empty;
                lines.Enqueue($"{logLevel} {category}: {formatter(state, exception)} [{values}] {exception}");
            }
        }
    }
}
