using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Postgres.Hosting;
using Ingestion.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Ingestion.CommandLine.Tests;

/// <summary>A keyed row.</summary>
public sealed class Item
{
    [RecordKey]
    public string Id { get; set; } = "";

    public int Value { get; set; }
}

/// <summary>A source whose records (and failures) come from a function.</summary>
public sealed class ItemSource(Func<IngestionContext, CancellationToken, IAsyncEnumerable<Item>> read) : IngestionSource<Item>
{
    public override IAsyncEnumerable<Item> ReadAsync(IngestionContext context, CancellationToken cancellationToken) => read(context, cancellationToken);

    /// <summary>Items i1..i{count}; every record whose number is in <paramref name="rejected"/> is rejected instead.</summary>
    public static async IAsyncEnumerable<Item> Items(IngestionContext context, int count, int[]? rejected = null, TimeSpan? delay = null, [EnumeratorCancellation] CancellationToken ct = default)
    {
        context.ReportInputSize(count);
        for (var i = 1; i <= count; i++)
        {
            if (delay is { } d)
            {
                await Task.Delay(d, ct);
            }

            if (rejected?.Contains(i) == true)
            {
                context.Reject(new RejectedRecord($"record {i}", "value", $"value {i} is not a number", $"bad-{i}"));
                continue;
            }

            yield return new Item { Id = $"i{i}", Value = i };
        }
    }

    /// <summary>Fails after one record.</summary>
    public static async IAsyncEnumerable<Item> Failing(IngestionContext context, [EnumeratorCancellation] CancellationToken ct = default)
    {
        await Task.Yield();
        yield return new Item { Id = "f1", Value = 1 };
        throw new IngestionException($"Source '{context.SourceName}': the feed is broken at record 2.") { SourceName = context.SourceName, Position = "record 2" };
    }
}

/// <summary>Builds hosts over the test database and runs the command line with captured, non-terminal output.</summary>
internal static class TestHost
{
    public static IHost Build(PostgresDatabase db, Action<IIngestionBuilder> configure, string schema = "ingestion")
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        var ingestion = builder.Services.AddIngestion().UsePostgres(o =>
        {
            o.ConnectionString = db.ConnectionString;
            o.Schema = schema;
        });
        configure(ingestion);
        return builder.Build();
    }

    public static IIngestionBuilder Items(this IIngestionBuilder builder, string name, int count, int[]? rejected = null, long maxRejected = 0, TimeSpan? delay = null) =>
        builder.AddSource(name, _ => new ItemSource((c, ct) => ItemSource.Items(c, count, rejected, delay, ct)), o =>
        {
            o.Table = name.Replace('-', '_');
            o.CreateTable = true;
            o.BatchSize = 5;
            o.MaxRejected = maxRejected;
            o.MaxRetryAttempts = 0;
        });

    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(IHost host, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var code = await host.RunIngestionCommandLineAsync(args, o =>
        {
            o.Output = output;
            o.Error = error;
            o.IsTerminal = false;
        });
        return (code, output.ToString(), error.ToString());
    }
}
