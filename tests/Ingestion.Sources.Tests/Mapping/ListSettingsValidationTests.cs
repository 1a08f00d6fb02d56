using Ingestion.Hosting;
using Ingestion.Sources.Csv;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Ingestion.Sources.Tests.Mapping;

/// <summary>Settings inside lists (Columns, Key, KeyColumns) are checked at start like top-level ones, each named by its path.</summary>
public sealed class ListSettingsValidationTests
{
    private static async Task<string> StartFailuresAsync(params (string Key, string Value)[] settings)
    {
        var values = new Dictionary<string, string?>
        {
            ["Ingestion:Sources:tickets:Location"] = "tickets.csv",
            ["Ingestion:Sources:tickets:Columns:0:Name"] = "id",
            ["Ingestion:Sources:tickets:Columns:1:Name"] = "amount",
            ["Ingestion:Sources:tickets:Columns:1:Type"] = "Int32",
            ["Ingestion:Sources:tickets:Key:0"] = "id",
        };
        foreach (var (k, v) in settings)
        {
            values[k] = v;
        }

        var config = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddIngestion(config.GetSection("Ingestion")).AddCsvSource("tickets");
        await using var sp = services.BuildServiceProvider();
        try
        {
            foreach (var hosted in sp.GetServices<IHostedService>())
            {
                await hosted.StartAsync(CancellationToken.None);
            }

            return string.Empty;
        }
        catch (OptionsValidationException e)
        {
            return string.Join("\n", e.Failures);
        }
    }

    [Fact]
    public async Task A_valid_column_list_starts()
    {
        Assert.Equal(string.Empty, await StartFailuresAsync());
    }

    [Fact]
    public async Task An_unknown_type_inside_Columns_fails_at_start_naming_its_path()
    {
        var failures = await StartFailuresAsync(("Ingestion:Sources:tickets:Columns:1:Type", "Integer"));
        Assert.Contains("Ingestion:Sources:tickets:Columns:1:Type 'Integer' is not a valid ColumnType", failures, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_word_where_a_boolean_is_expected_inside_Columns_fails_at_start()
    {
        var failures = await StartFailuresAsync(("Ingestion:Sources:tickets:Columns:0:Required", "yes please"));
        Assert.Contains("Ingestion:Sources:tickets:Columns:0:Required 'yes please' is not a valid boolean", failures, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Key")]
    [InlineData("KeyColumns")]
    public async Task A_key_column_named_twice_is_refused_at_start(string setting)
    {
        var failures = await StartFailuresAsync(($"Ingestion:Sources:tickets:{setting}:0", "id"), ($"Ingestion:Sources:tickets:{setting}:1", "id"));
        Assert.Contains($"Ingestion:Sources:tickets:{setting}:1 'id' appears twice in the key", failures, StringComparison.Ordinal);
    }

    [Fact]
    public void A_schema_built_in_code_refuses_a_key_named_twice()
    {
        var e = Assert.Throws<ArgumentException>(() => RecordSchema.Create([new ColumnSchema("id", ColumnType.Text, isNullable: false)], ["id", "id"]));
        Assert.Contains("'id' appears twice in the key", e.Message, StringComparison.Ordinal);
    }
}
