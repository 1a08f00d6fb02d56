using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Plugins;

/// <summary>
/// A loaded plug-in: its current generation, the runs in progress, and the reload between runs when its
/// files change. Sources are created through the handle, so a reload swaps what the next run creates.
/// </summary>
internal sealed class PluginHandle
{
    private readonly object _gate = new();
    private readonly SharedAssemblies _shared;
    private readonly IConfiguration? _configuration;
    private readonly PluginLoaderOptions _options;
    private PluginGeneration _current;
    private int _activeRuns;
    private int _generation = 1;
    private string? _reloadError;
    private string _seenStamp;

    public PluginHandle(string name, string folder, string mainPath, PluginGeneration first, SharedAssemblies shared, IConfiguration? configuration, PluginLoaderOptions options)
    {
        Name = name;
        Folder = folder;
        MainPath = mainPath;
        _current = first;
        _seenStamp = first.Stamp;
        _shared = shared;
        _configuration = configuration;
        _options = options;
        SourceNames = first.Declared.Sources.Select(s => s.Name).ToList();
    }

    public string Name { get; }

    public string Folder { get; }

    public string MainPath { get; }

    /// <summary>The source names, fixed at the first load (a reload must declare the same ones).</summary>
    public IReadOnlyList<string> SourceNames { get; }

    /// <summary>Where the registrations came from, for <see cref="Hosting.SourceRegistration.Origin"/> and error messages.</summary>
    public string Origin => $"plug-in {Name} ({MainPath})";

    /// <summary>The prefix of every error of a run of one of the plug-in's sources.</summary>
    public string ErrorPrefix => $"Plug-in {Name} ('{MainPath}')";

    internal PluginGeneration Current
    {
        get
        {
            lock (_gate)
            {
                return _current;
            }
        }
    }

    public PluginInfo Describe()
    {
        lock (_gate)
        {
            return new PluginInfo
            {
                Name = Name,
                Folder = Folder,
                AssemblyPath = MainPath,
                Status = PluginStatus.Loaded,
                Sources = SourceNames,
                AssemblyVersion = _current.Image.Name.Version,
                ContractVersion = _current.Image.Contract.Version,
                Generation = _generation,
                LoadedAt = _current.LoadedAt,
                ReloadError = _reloadError,
            };
        }
    }

    /// <summary>A run of one of the plug-in's sources starts: reloads changed files first when no other run is in progress.</summary>
    /// <returns>Whether a new generation was loaded.</returns>
    public bool BeginRun()
    {
        lock (_gate)
        {
            var reloaded = _activeRuns == 0 && _options.ReloadOnChange && ReloadIfChangedLocked();
            _activeRuns++;
            return reloaded;
        }
    }

    /// <summary>A run of one of the plug-in's sources ended.</summary>
    public void EndRun()
    {
        lock (_gate)
        {
            _activeRuns = Math.Max(0, _activeRuns - 1);
        }
    }

    /// <summary>Reloads the plug-in when its files changed and none of its sources is running.</summary>
    /// <returns>Whether a new generation was loaded.</returns>
    public bool ReloadIfChanged()
    {
        lock (_gate)
        {
            return _activeRuns == 0 && ReloadIfChangedLocked();
        }
    }

    /// <summary>Applies the plug-in's own adjustments of a source's runtime settings.</summary>
    public void ConfigureSourceOptions(string sourceName, SourceOptions options)
    {
        if (Current.Sources.TryGetValue(sourceName, out var source))
        {
            source.Configure?.Invoke(options);
        }
    }

    /// <summary>Binds and checks the settings the plug-in declared with AddSourceOptions; each problem names the source.</summary>
    public IEnumerable<string> ValidateOptions()
    {
        var generation = Current;
        var errors = new List<string>();
        foreach (var declared in generation.Declared.Options)
        {
            errors.AddRange(Validate(declared).Select(e => $"Source '{declared.SourceName}' ({Origin}): {e}"));
        }

        return errors;
    }

    /// <summary>Creates the source for one run attempt, guarded so that its run's cancellation always stops it.</summary>
    public IIngestionSource CreateSource(string sourceName, IServiceProvider services)
    {
        var generation = Current;
        var declared = generation.Sources[sourceName];
        IIngestionSource source;
        try
        {
            if (declared.Factory is { } factory)
            {
                source = factory(services);
            }
            else
            {
                var parameterTypes = declared.Type!.GetConstructors().SelectMany(c => c.GetParameters()).Select(p => p.ParameterType).ToHashSet();
                var settings = new List<object>();
                foreach (var options in generation.Declared.Options.Where(o => o.SourceName == sourceName && parameterTypes.Contains(o.Type)))
                {
                    var value = options.Create(_configuration);
                    var problems = options.Validate(value).ToList();
                    if (problems.Count > 0)
                    {
                        throw new InvalidOperationException($"its settings are invalid: {string.Join(" ", problems)}");
                    }

                    settings.Add(value);
                }

                source = (IIngestionSource)ActivatorUtilities.CreateInstance(services, declared.Type!, [.. settings]);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var cause = e is TargetInvocationException { InnerException: { } inner } ? inner : e;
            throw new IngestionException($"{ErrorPrefix}: source '{sourceName}' could not be created: {PluginGeneration.Describe(cause)}", cause) { SourceName = sourceName };
        }

        return Guard(source, sourceName);
    }

    private IIngestionSource Guard(IIngestionSource source, string sourceName)
    {
        var typed = typeof(IIngestionSource<>).MakeGenericType(source.RecordType);
        if (!typed.IsInstanceOfType(source))
        {
            throw new IngestionException($"{ErrorPrefix}: source '{sourceName}': {source.GetType().FullName} says its records are {source.RecordType.FullName} but does not implement {typed.Name} for them.") { SourceName = sourceName };
        }

        return (IIngestionSource)Activator.CreateInstance(typeof(GuardedSource<>).MakeGenericType(source.RecordType), source, ErrorPrefix)!;
    }

    private IEnumerable<string> Validate(StagedOptions declared)
    {
        object value;
        try
        {
            value = declared.Create(_configuration);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException)
        {
            return [e.Message];
        }

        return declared.Validate(value);
    }

    private bool ReloadIfChangedLocked()
    {
        var stamp = PluginFiles.Stamp(Folder);
        if (stamp == _seenStamp)
        {
            return false;
        }

        _seenStamp = stamp;
        PluginGeneration next;
        try
        {
            next = PluginGeneration.Load(Name, Folder, MainPath, _shared, _configuration, _options.TimeProvider.GetUtcNow());
        }
        catch (PluginLoadException e)
        {
            _reloadError = e.Message;
            return false;
        }

        var problem = CheckReload(next);
        if (problem is not null)
        {
            next.Unload();
            _reloadError = problem;
            return false;
        }

        var old = _current;
        _current = next;
        _generation++;
        _reloadError = null;
        old.Unload();
        return true;
    }

    private string? CheckReload(PluginGeneration next)
    {
        var names = next.Declared.Sources.Select(s => s.Name).ToList();
        if (!names.SequenceEqual(SourceNames, StringComparer.Ordinal))
        {
            return $"'{MainPath}': the new build declares sources [{string.Join(", ", names)}] instead of [{string.Join(", ", SourceNames)}]; restart the host to change which sources a plug-in declares.";
        }

        if (next.Declared.Services.Count > 0 || _current.Declared.Services.Count > 0)
        {
            return $"'{MainPath}': the plug-in registers its own services, which live in the host's container; restart the host to load the new build.";
        }

        var errors = next.Declared.Options.SelectMany(o => Validate(o).Select(e => $"Source '{o.SourceName}': {e}")).ToList();
        return errors.Count > 0 ? $"'{MainPath}': the new build's settings are invalid: {string.Join(" ", errors)}" : null;
    }
}
