using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using Ingestion.Hosting;
using Ingestion.Running;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Core.Tests.Hosting;

/// <summary>AddIngestion() registers IHttpClientFactory, so a host's source asking for it in its constructor runs.</summary>
public sealed class HttpClientRegistrationTests
{
    public sealed class Item
    {
        [RecordKey]
        public string Id { get; set; } = "";
    }

    public sealed class HttpItemsSource(IHttpClientFactory http, Uri url) : IngestionSource<Item>
    {
        public override async IAsyncEnumerable<Item> ReadAsync(IngestionContext context, [EnumeratorCancellation] CancellationToken cancellationToken)
        {
            foreach (var id in await http.CreateClient().GetFromJsonAsync<string[]>(url, cancellationToken) ?? [])
            {
                yield return new Item { Id = id };
            }
        }
    }

    [Fact]
    public async Task A_source_asking_for_IHttpClientFactory_runs_without_registering_it()
    {
        await using var server = await TestHttpServer.StartAsync(ctx => ctx.Response.WriteAsync("""["a","b","c"]"""));
        var services = new ServiceCollection();
        services.AddSingleton(server.Url("items"));
        services.AddIngestion().AddSource<HttpItemsSource>("http-items");
        await using var sp = services.BuildServiceProvider();
        var result = await sp.GetRequiredService<IIngestionRunner>().RunAsync("http-items", null, CancellationToken.None);
        Assert.True(result.Status == IngestionStatus.Succeeded, result.ToString());
        Assert.Equal(3L, result.Counts.Created);
    }
}
