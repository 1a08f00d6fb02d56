using System.Runtime.InteropServices;
using System.Runtime.Loader;
using Ingestion.Plugins;
using Microsoft.Extensions.Options;

namespace Ingestion.Core.Tests.Plugins;

[Collection(PluginCollection.Name)]
public sealed class PluginLoaderTests(PluginFixtures fixtures)
{
    [Fact]
    public void Contract_assembly_version_is_the_contract_major_version()
    {
        Assert.Equal(IngestionContract.MajorVersion, typeof(IIngestionPlugin).Assembly.GetName().Version!.Major);
    }

    [Fact]
    public async Task Loads_a_plugin_binds_its_settings_from_configuration_and_resumes_from_its_checkpoint()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.Good");
        await using var host = PluginHost.Start(drop, new Dictionary<string, string?>
        {
            ["Ingestion:Sources:greetings:Count"] = "4",
            ["Ingestion:Sources:greetings:Prefix"] = "bonjour",
        });

        var info = host.Plugin("Plugin.Good");
        Assert.Equal(PluginStatus.Loaded, info.Status);
        Assert.Equal(["greetings"], info.Sources);
        Assert.Equal(IngestionContract.MajorVersion, info.ContractVersion!.Major);
        Assert.Equal(Path.Combine(drop, "Plugin.Good", "Plugin.Good.dll"), info.AssemblyPath);
        Assert.Contains("Plugin.Good.dll", host.Catalog.Find("greetings")!.Origin, StringComparison.Ordinal);

        var first = await host.RunAsync("greetings");
        Assert.Equal(IngestionStatus.Succeeded, first.Status);
        Assert.Equal(new IngestionCounts { Read = 4, Created = 4 }, first.Counts);
        var rows = host.Sink.GetTable("greetings");
        Assert.Equal(["bonjour 1", "bonjour 2", "bonjour 3", "bonjour 4"], rows.Values.Select(r => (string)r[1]!).Order(StringComparer.Ordinal));

        // The second run resumes after the saved cursor (4): g5..g8 are new.
        var second = await host.RunAsync("greetings");
        Assert.Equal(4, second.Counts.Created);
        Assert.Equal(8, host.Sink.GetTable("greetings").Count);

        // The plug-in's types live in its own collectible context (McMaster's loader); the contract it implements is the host's.
        var generation = host.Manager.HandleOf("greetings")!.Current;
        var context = AssemblyLoadContext.GetLoadContext(generation.Assembly)!;
        Assert.NotSame(AssemblyLoadContext.Default, context);
        Assert.True(context.IsCollectible);
        Assert.Equal("McMaster.NETCore.Plugins", context.GetType().Assembly.GetName().Name);
        var pluginType = generation.Assembly.GetType("Fixtures.Good.GoodPlugin")!;
        Assert.True(typeof(IIngestionPlugin).IsAssignableFrom(pluginType));
        Assert.Same(typeof(IIngestionPlugin).Assembly, pluginType.GetInterfaces().Single().Assembly);

        // It was loaded from a shadow copy: Assembly.Location names a real file, and the dropped files stay free.
        Assert.True(File.Exists(generation.Assembly.Location));
        Assert.StartsWith(Path.GetTempPath(), generation.Assembly.Location, StringComparison.Ordinal);
        Assert.NotEqual(info.AssemblyPath, generation.Assembly.Location);
    }

    [Fact]
    public async Task Invalid_plugin_settings_fail_at_start_naming_the_setting_and_the_plugin()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.Good");
        await using var host = PluginHost.Start(drop, new Dictionary<string, string?> { ["Ingestion:Sources:greetings:Count"] = "0" });
        var e = Assert.Throws<OptionsValidationException>(() => host.Runner);
        var message = string.Join("\n", e.Failures);
        Assert.Contains("Ingestion:Sources:greetings:Count must be positive (was 0)", message, StringComparison.Ordinal);
        Assert.Contains("Plugin.Good.dll", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Two_plugins_use_two_versions_of_one_library_in_one_process()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.JsonNew");
        fixtures.Drop(drop, "Plugin.JsonOld");
        await using var host = PluginHost.Start(drop);
        Assert.All(host.Manager.Plugins, p => Assert.Equal(PluginStatus.Loaded, p.Status));

        var summary = await host.Runner.RunManyAsync(new Ingestion.Running.RunManyRequest { Sources = ["json-new", "json-old"] }, CancellationToken.None);
        Assert.True(summary.AllSucceeded, string.Join("; ", summary.Results));

        // Columns: Id, JsonAssemblyVersion, JsonFileVersion, Serialized.
        var newer = host.Sink.GetTable("json-new").Values.Single();
        var older = host.Sink.GetTable("json-old").Values.Single();
        Assert.Equal("13.0.0.0", newer[1]);
        Assert.StartsWith("13.0.1", (string)newer[2]!, StringComparison.Ordinal);
        Assert.Equal("12.0.0.0", older[1]);
        Assert.StartsWith("12.0.3", (string)older[2]!, StringComparison.Ordinal);
        Assert.Equal("""{"source":"json-new","n":1}""", newer[3]);
        Assert.Equal("""{"source":"json-old","n":1}""", older[3]);

        // Both copies are loaded at once, each in its plug-in's own context.
        var jsons = AssemblyLoadContext.All.SelectMany(c => c.Assemblies).Where(a => a.GetName().Name == "Newtonsoft.Json").ToList();
        Assert.Contains(jsons, a => a.GetName().Version!.Major == 13 && AssemblyLoadContext.GetLoadContext(a)!.Name == "Plugin.JsonNew");
        Assert.Contains(jsons, a => a.GetName().Version!.Major == 12 && AssemblyLoadContext.GetLoadContext(a)!.Name == "Plugin.JsonOld");
    }

    [Fact]
    public async Task Bad_plugins_are_refused_with_an_error_naming_the_file_and_the_good_one_still_runs()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.Good");

        // Not a .NET assembly: a native library, and a text file, named like plug-ins.
        var native = Directory.CreateDirectory(Path.Combine(drop, "native")).FullName;
        File.Copy(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "libSystem.Native.so"), Path.Combine(native, "native.dll"));
        var text = Directory.CreateDirectory(Path.Combine(drop, "notes")).FullName;
        File.WriteAllText(Path.Combine(text, "notes.dll"), "This is not an assembly.\n");

        // A corrupt assembly: a real plug-in cut in half.
        var corrupt = fixtures.Drop(drop, "Plugin.Duplicate", "Plugin.Corrupt");
        var bytes = File.ReadAllBytes(Path.Combine(corrupt, "Plugin.Duplicate.dll"));
        File.Delete(Path.Combine(corrupt, "Plugin.Duplicate.dll"));
        File.WriteAllBytes(Path.Combine(corrupt, "Plugin.Corrupt.dll"), bytes[..(bytes.Length / 2)]);

        // A missing dependency: its private Newtonsoft.Json was not copied.
        var missing = fixtures.Drop(drop, "Plugin.JsonNew");
        File.Delete(Path.Combine(missing, "Newtonsoft.Json.dll"));

        // Built against contract version 2.
        fixtures.Drop(drop, "Plugin.FutureContract");

        // Ships its own copy of the contract.
        var shipsContract = fixtures.Drop(drop, "Plugin.JsonOld");
        File.Copy(typeof(IIngestionPlugin).Assembly.Location, Path.Combine(shipsContract, "Ingestion.Abstractions.dll"));

        // No source: a source class but no entry point.
        fixtures.Drop(drop, "Plugin.NoSource");

        // A folder without its <name>.dll.
        Directory.CreateDirectory(Path.Combine(drop, "empty"));

        await using var host = PluginHost.Start(drop);
        void Refused(string name, string file, params string[] phrases)
        {
            var info = host.Plugin(name);
            Assert.True(info.Status == PluginStatus.Refused, info.ToString());
            Assert.Contains(Path.Combine(drop, name, file), info.Error, StringComparison.Ordinal);
            foreach (var phrase in phrases)
            {
                Assert.True(info.Error!.Contains(phrase, StringComparison.Ordinal), $"'{phrase}' not in: {info.Error}");
            }
        }

        Refused("native", "native.dll", "is not a .NET assembly");
        Refused("notes", "notes.dll", "is not a .NET assembly");
        Refused("Plugin.Corrupt", "Plugin.Corrupt.dll", "is corrupt");
        Refused("Plugin.JsonNew", "Plugin.JsonNew.dll", "missing dependency", "Newtonsoft.Json");
        Refused("Plugin.FutureContract", "Plugin.FutureContract.dll", "incompatible contract", "Ingestion.Abstractions 2.0.0.0", $"contract version {IngestionContract.MajorVersion}");
        Refused("Plugin.JsonOld", "Ingestion.Abstractions.dll", "ships its own copy of the contract");
        Refused("Plugin.NoSource", "Plugin.NoSource.dll", "declares no source", "IIngestionPlugin");
        Refused("empty", string.Empty, "has no 'empty.dll'");

        // Nothing of a refused plug-in was registered; the good one loaded and runs.
        Assert.Equal(["greetings"], host.Catalog.Sources.Select(s => s.Name));
        Assert.Equal(PluginStatus.Loaded, host.Plugin("Plugin.Good").Status);
        Assert.Equal(IngestionStatus.Succeeded, (await host.RunAsync("greetings")).Status);
    }

    [Fact]
    public async Task Two_plugins_declaring_one_source_name_the_second_is_refused_naming_both_files()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.Duplicate");
        fixtures.Drop(drop, "Plugin.Good");
        await using var host = PluginHost.Start(drop);

        // Folders load in ordinal order: Plugin.Duplicate first, so Plugin.Good is the one refused, as a whole.
        Assert.Equal(PluginStatus.Loaded, host.Plugin("Plugin.Duplicate").Status);
        var refused = host.Plugin("Plugin.Good");
        Assert.Equal(PluginStatus.Refused, refused.Status);
        Assert.Contains(Path.Combine(drop, "Plugin.Good", "Plugin.Good.dll"), refused.Error, StringComparison.Ordinal);
        Assert.Contains("'greetings'", refused.Error, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(drop, "Plugin.Duplicate", "Plugin.Duplicate.dll"), refused.Error, StringComparison.Ordinal);
        Assert.Equal(["duplicate-own", "greetings"], host.Catalog.Sources.Select(s => s.Name));
        Assert.Equal(IngestionStatus.Succeeded, (await host.RunAsync("duplicate-own")).Status);
    }

    [Fact]
    public async Task A_plugin_declaring_a_source_name_the_host_registered_is_refused()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.Good");
        await using var host = PluginHost.Start(drop, before: b => b.AddSource("greetings", _ => new Running.ScriptedSource((_, ct) => Running.ScriptedSource.Items(1, ct: ct))));
        var refused = host.Plugin("Plugin.Good");
        Assert.Equal(PluginStatus.Refused, refused.Status);
        Assert.Contains("already registered by host", refused.Error, StringComparison.Ordinal);
        Assert.Equal("host", host.Catalog.Find("greetings")!.Origin);
    }

    [Fact]
    public async Task A_source_whose_constructor_throws_fails_its_run_naming_the_plugin_file_and_others_run()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.Faulty");
        fixtures.Drop(drop, "Plugin.Good");
        await using var host = PluginHost.Start(drop, new Dictionary<string, string?> { ["Ingestion:Sources:explodes:MaxRetryAttempts"] = "0" });
        var result = await host.RunAsync("explodes");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.StartsWith($"Plug-in Plugin.Faulty ('{Path.Combine(drop, "Plugin.Faulty", "Plugin.Faulty.dll")}'): source 'explodes' could not be created", result.Error!.Message, StringComparison.Ordinal);
        Assert.Contains("the API key setting 'FaultyKey' is missing", result.Error.Message, StringComparison.Ordinal);
        Assert.Equal(IngestionStatus.Succeeded, (await host.RunAsync("greetings")).Status);
    }

    [Fact]
    public async Task An_error_thrown_while_a_plugin_source_reads_is_prefixed_with_the_plugin_name_and_file()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.Faulty");
        await using var host = PluginHost.Start(drop, new Dictionary<string, string?> { ["Ingestion:Sources:fails:MaxRetryAttempts"] = "0" });
        var result = await host.RunAsync("fails");
        Assert.Equal(IngestionStatus.Failed, result.Status);
        Assert.Equal(
            $"Plug-in Plugin.Faulty ('{Path.Combine(drop, "Plugin.Faulty", "Plugin.Faulty.dll")}'): FormatException: row 2: 'yesterday' is not a date",
            result.Error!.Message);
    }

    [Fact]
    public async Task A_plugin_built_without_its_private_dependencies_is_refused_naming_the_assembly_and_both_versions()
    {
        // Plugin.CsvOld built against CsvHelper 30 as a build without EnableDynamicLoading leaves it: CsvHelper.dll not
        // copied (its deps.json still lists it), so it would silently bind to the host's CsvHelper 34 and fail at run
        // time with MissingMethodException.
        var drop = fixtures.NewDropFolder();
        var folder = fixtures.Drop(drop, "Plugin.CsvOld");
        File.Delete(Path.Combine(folder, "CsvHelper.dll"));
        fixtures.Drop(drop, "Plugin.Good");
        Assert.Equal(34, typeof(CsvHelper.CsvReader).Assembly.GetName().Version!.Major);

        await using var host = PluginHost.Start(drop);
        var refused = host.Plugin("Plugin.CsvOld");
        Assert.Equal(PluginStatus.Refused, refused.Status);
        var error = refused.Error!;
        Assert.StartsWith($"Plug-in Plugin.CsvOld ('{Path.Combine(folder, "Plugin.CsvOld.dll")}')", error, StringComparison.Ordinal);
        Assert.Contains("CsvHelper: wants 30.0.0.0, does not ship it, and the host's is 34.0.0.0 (another major version)", error, StringComparison.Ordinal);
        Assert.Contains("<EnableDynamicLoading>true</EnableDynamicLoading>", error, StringComparison.Ordinal);
        Assert.Null(host.Catalog.Find("csv-old"));
        Assert.Equal(IngestionStatus.Succeeded, (await host.RunAsync("greetings")).Status);
    }

    [Fact]
    public async Task A_plugin_shipping_an_older_major_of_a_host_library_runs_with_its_own_copy()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.CsvOld");
        await using var host = PluginHost.Start(drop);
        Assert.Equal(PluginStatus.Loaded, host.Plugin("Plugin.CsvOld").Status);
        var result = await host.RunAsync("csv-old");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);

        // Columns: Id, CsvHelperVersion, FirstCity. The host keeps its CsvHelper 34 in the same process.
        var row = host.Sink.GetTable("csv-old").Values.Single();
        Assert.Equal("30.0.0.0", row[1]);
        Assert.Equal("Montréal", row[2]);
        Assert.Equal(34, typeof(CsvHelper.CsvReader).Assembly.GetName().Version!.Major);
    }

    [Fact]
    public async Task A_source_that_hangs_is_stopped_by_the_run_timeout_and_by_shutdown()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.Faulty");
        fixtures.Drop(drop, "Plugin.Good");
        await using var host = PluginHost.Start(drop, new Dictionary<string, string?>
        {
            ["Ingestion:Sources:hangs:Timeout"] = "00:00:00.300",
            ["Ingestion:Sources:hangs:MaxRetryAttempts"] = "0",
        });

        // The per-run timeout: the source ignores its token, the run ends anyway, as a timeout.
        var timedOut = await host.RunAsync("hangs").WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(IngestionStatus.Failed, timedOut.Status);
        Assert.Equal("Timeout", timedOut.Error!.Type);

        // Shutdown: the host's stopping token ends the run, within any reasonable grace period.
        using var stopping = new CancellationTokenSource();
        var run = host.Runner.RunAsync("hangs", new Ingestion.Running.RunRequest(), stopping.Token);
        await Task.Delay(100);
        Assert.False(run.IsCompleted);
        stopping.Cancel();
        var cancelled = await run.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(IngestionStatus.Cancelled, cancelled.Status);

        // The host and the other plug-ins keep working.
        Assert.Equal(IngestionStatus.Succeeded, (await host.RunAsync("greetings")).Status);
    }
}
