using System.Runtime.CompilerServices;
using Ingestion.Plugins;

namespace Ingestion.Core.Tests.Plugins;

[Collection(PluginCollection.Name)]
public sealed class PluginReloadTests(PluginFixtures fixtures)
{
    [Fact]
    public async Task A_new_build_copied_over_a_loaded_plugin_is_loaded_before_the_next_run_and_the_old_one_unloads()
    {
        var drop = fixtures.NewDropFolder();
        var folder = fixtures.Drop(drop, "Plugin.Good");
        await using var host = PluginHost.Start(drop);

        await host.RunAsync("greetings");
        Assert.All(host.Sink.GetTable("greetings").Values, r => Assert.Equal("v1", r[2]));
        var old = OldContext(host);
        var oldShadow = host.Manager.HandleOf("greetings")!.Current.ShadowFolder;
        Assert.True(Directory.Exists(oldShadow));

        // The files are not locked or mapped: a new build is copied over the loaded one, in place.
        PluginFixtures.CopyFolder(fixtures.Output("Plugin.Good.V2"), folder);

        var result = await host.RunAsync("greetings");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        var info = host.Plugin("Plugin.Good");
        Assert.Equal(2, info.Generation);
        Assert.Equal(2, info.AssemblyVersion!.Major);
        Assert.Null(info.ReloadError);
        Assert.Equal(3, host.Sink.GetTable("greetings").Values.Count(r => (string)r[2]! == "v2"));
        Assert.False(Directory.Exists(oldShadow), "the first generation's shadow copy was not removed");

        // The first generation's load context is collected once unloaded.
        for (var i = 0; i < 20 && old.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            await Task.Delay(10);
        }

        Assert.False(old.IsAlive, "the first generation's load context was not collected after the reload");
    }

    [Fact]
    public async Task Changed_files_are_never_loaded_during_a_run_only_between_runs()
    {
        var drop = fixtures.NewDropFolder();
        var folder = fixtures.Drop(drop, "Plugin.Faulty");
        await using var host = PluginHost.Start(drop, new Dictionary<string, string?> { ["Ingestion:Sources:hangs:MaxRetryAttempts"] = "0" });

        using var stopping = new CancellationTokenSource();
        var run = host.Runner.RunAsync("hangs", null, stopping.Token);
        await Task.Delay(100);
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "changed while running");
        Assert.Empty(host.Manager.ReloadChanged());
        Assert.Equal(1, host.Plugin("Plugin.Faulty").Generation);

        stopping.Cancel();
        Assert.Equal(IngestionStatus.Cancelled, (await run.WaitAsync(TimeSpan.FromSeconds(30))).Status);
        Assert.Equal(["Plugin.Faulty"], host.Manager.ReloadChanged());
        Assert.Equal(2, host.Plugin("Plugin.Faulty").Generation);
    }

    [Fact]
    public async Task A_broken_new_build_keeps_the_previous_one_in_use_and_says_why()
    {
        var drop = fixtures.NewDropFolder();
        var folder = fixtures.Drop(drop, "Plugin.Good");
        await using var host = PluginHost.Start(drop);
        File.WriteAllText(Path.Combine(folder, "Plugin.Good.dll"), "half-copied");

        var result = await host.RunAsync("greetings");
        Assert.Equal(IngestionStatus.Succeeded, result.Status);
        var info = host.Plugin("Plugin.Good");
        Assert.Equal(1, info.Generation);
        Assert.Contains("is not a .NET assembly", info.ReloadError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reloading_can_be_turned_off()
    {
        var drop = fixtures.NewDropFolder();
        var folder = fixtures.Drop(drop, "Plugin.Good");
        await using var host = PluginHost.Start(drop, options: o => o.ReloadOnChange = false);
        PluginFixtures.CopyFolder(fixtures.Output("Plugin.Good.V2"), folder);
        await host.RunAsync("greetings");
        Assert.Equal(1, host.Plugin("Plugin.Good").Generation);
        Assert.All(host.Sink.GetTable("greetings").Values, r => Assert.Equal("v1", r[2]));
    }

    [Fact]
    public async Task The_listing_shows_what_was_loaded_from_where_and_why_anything_was_refused()
    {
        var drop = fixtures.NewDropFolder();
        fixtures.Drop(drop, "Plugin.Good");
        fixtures.Drop(drop, "Plugin.FutureContract");
        await using var host = PluginHost.Start(drop);
        using var text = new StringWriter();
        host.Manager.WriteListing(text);
        var listing = text.ToString();
        Assert.Contains($"Plug-in folder: {drop}", listing, StringComparison.Ordinal);
        Assert.Contains("1 loaded, 1 refused", listing, StringComparison.Ordinal);
        Assert.Contains("[loaded]  Plugin.Good 0.1.0.0 built against contract 1", listing, StringComparison.Ordinal);
        Assert.Contains("sources greetings", listing, StringComparison.Ordinal);
        Assert.Contains("[refused] Plugin.FutureContract: ", listing, StringComparison.Ordinal);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference OldContext(PluginHost host) => host.Manager.HandleOf("greetings")!.Current.ContextReference;
}
