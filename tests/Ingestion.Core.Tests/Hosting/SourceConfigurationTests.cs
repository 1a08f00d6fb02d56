using Ingestion.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Ingestion.Core.Tests.Hosting;

/// <summary>
/// A source whose name holds '-' or '.' (invalid in a shell variable name) is configured from environment variables
/// through its name with '_' (Ingestion__Sources__meter_readings__Table), read from the real process environment.
/// </summary>
public sealed class SourceConfigurationTests
{
    public sealed class MeterOptions
    {
        public string? Url { get; set; }

        public int PageSize { get; set; } = 10;
    }

    private static ServiceProvider Build(IDictionary<string, string> environment, Action<IIngestionBuilder>? configure = null, IDictionary<string, string?>? json = null)
    {
        var prefix = $"INGT_{Guid.NewGuid():N}_";
        foreach (var (key, value) in environment)
        {
            Environment.SetEnvironmentVariable(prefix + key, value);
        }

        try
        {
            // As a host builds it: files first, the environment over them.
            var config = new ConfigurationBuilder().AddInMemoryCollection(json ?? new Dictionary<string, string?>()).AddEnvironmentVariables(prefix).Build();
            var services = new ServiceCollection();
            var builder = services.AddIngestion(config.GetSection("Ingestion"))
                .AddSource("meter-readings", _ => throw new InvalidOperationException("not run"))
                .AddSourceOptions<MeterOptions>("meter-readings");
            configure?.Invoke(builder);
            return services.BuildServiceProvider();
        }
        finally
        {
            foreach (var key in environment.Keys)
            {
                Environment.SetEnvironmentVariable(prefix + key, null);
            }
        }
    }

    [Fact]
    public void Environment_variables_with_the_underscore_name_set_a_hyphenated_source()
    {
        using var sp = Build(new Dictionary<string, string>
        {
            ["Ingestion__Sources__meter_readings__Table"] = "readings",
            ["Ingestion__Sources__meter_readings__BatchSize"] = "250",
            ["Ingestion__Sources__meter_readings__Url"] = "https://example.org/meters",
        });
        var options = sp.GetRequiredService<IOptionsMonitor<SourceOptions>>().Get("meter-readings");
        Assert.Equal("readings", options.Table);
        Assert.Equal(250, options.BatchSize);
        Assert.Equal("https://example.org/meters", sp.GetRequiredService<IOptionsMonitor<MeterOptions>>().Get("meter-readings").Url);
        IngestionStartupValidator.Validate(sp);
    }

    [Fact]
    public void The_underscore_name_overrides_the_file_settings_and_leaves_the_others()
    {
        using var sp = Build(
            new Dictionary<string, string> { ["Ingestion__Sources__meter_readings__Table"] = "from_env" },
            json: new Dictionary<string, string?> { ["Ingestion:Sources:meter-readings:Table"] = "from_file", ["Ingestion:Sources:meter-readings:MaxRejected"] = "7" });
        var options = sp.GetRequiredService<IOptionsMonitor<SourceOptions>>().Get("meter-readings");
        Assert.Equal(("from_env", 7), (options.Table, options.MaxRejected));
    }

    [Fact]
    public void An_unreadable_value_under_the_underscore_name_fails_at_start_naming_its_path()
    {
        using var sp = Build(new Dictionary<string, string> { ["Ingestion__Sources__meter_readings__BatchSize"] = "lots", ["Ingestion__Sources__meter_readings__PageSize"] = "many" });
        var e = Assert.Throws<OptionsValidationException>(() => IngestionStartupValidator.Validate(sp));
        var all = string.Join("\n", e.Failures);
        Assert.Contains("Ingestion:Sources:meter_readings:BatchSize 'lots'", all, StringComparison.Ordinal);
        Assert.Contains("Ingestion:Sources:meter_readings:PageSize 'many'", all, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_sources_sharing_an_environment_name_are_refused_naming_both()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Build(new Dictionary<string, string>(), b => b.AddSource("meter_readings", _ => throw new InvalidOperationException("not run"))));
        Assert.Contains("Source 'meter_readings' cannot be registered next to source 'meter-readings'", e.Message, StringComparison.Ordinal);
        Assert.Contains("Ingestion__Sources__meter_readings__", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("meter-readings", "meter_readings")]
    [InlineData("city.events", "city_events")]
    [InlineData("plain_name", "plain_name")]
    public void The_environment_name_replaces_hyphens_and_dots(string name, string expected) =>
        Assert.Equal(expected, SourceConfiguration.EnvironmentName(name));
}
