namespace Ingestion.Hosting;

/// <summary>Global settings of the runtime, bound from the <c>Ingestion</c> configuration section.</summary>
public sealed class IngestionOptions
{
    /// <summary>The configuration section name.</summary>
    public const string SectionName = "Ingestion";

    /// <summary>The host name recorded in job rows; defaults to the machine name and process id.</summary>
    public string HostName { get; set; } = $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>The default most sources running at once in a parallel run-all.</summary>
    public int MaxDegreeOfParallelism { get; set; } = 2;

    /// <summary>
    /// How often a running job records that it is alive (<see cref="Stores.ImportJob.HeartbeatAt"/>) between batches;
    /// each committed batch records it too. Default 15 seconds.
    /// </summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// How long a job may go without a heartbeat before a host's start-up sweep closes it as
    /// <see cref="IngestionStatus.Abandoned"/> (a later run of the same source closes it at once). Default 2 minutes;
    /// keep it several times <see cref="HeartbeatInterval"/>.
    /// </summary>
    public TimeSpan AbandonAfter { get; set; } = TimeSpan.FromMinutes(2);
}

/// <summary>A registered source: its name and how to create it.</summary>
public sealed class SourceRegistration
{
    internal SourceRegistration(string name, Type? sourceType, Func<IServiceProvider, IIngestionSource> factory)
    {
        Name = name;
        SourceType = sourceType;
        Factory = factory;
    }

    /// <summary>The unique source name.</summary>
    public string Name { get; }

    /// <summary>The source class when registered by type; <see langword="null"/> for factories.</summary>
    public Type? SourceType { get; }

    /// <summary>Creates the source for one run.</summary>
    public Func<IServiceProvider, IIngestionSource> Factory { get; }

    /// <summary>Where the registration came from (the host, or a plug-in file).</summary>
    public string Origin { get; internal set; } = "host";
}

/// <summary>The registered sources, in registration order.</summary>
public sealed class SourceCatalog
{
    private readonly List<SourceRegistration> _sources = [];
    private readonly List<Func<IServiceProvider, IEnumerable<string>>> _checks = [];

    /// <summary>The registrations.</summary>
    public IReadOnlyList<SourceRegistration> Sources => _sources;

    /// <summary>Finds a registration by name.</summary>
    /// <param name="name">The source name (ordinal comparison).</param>
    /// <returns>The registration, or <see langword="null"/>.</returns>
    public SourceRegistration? Find(string name) => _sources.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.Ordinal));

    /// <summary>
    /// Adds a check run at start (when the runner is created or the host starts) that returns problems
    /// with the configuration, each naming the setting. Source-specific option validation registers here.
    /// </summary>
    /// <param name="check">The check.</param>
    public void AddStartupCheck(Func<IServiceProvider, IEnumerable<string>> check)
    {
        ArgumentNullException.ThrowIfNull(check);
        _checks.Add(check);
    }

    internal IReadOnlyList<Func<IServiceProvider, IEnumerable<string>>> StartupChecks => _checks;

    internal void Add(SourceRegistration registration)
    {
        if (Find(registration.Name) is { } existing)
        {
            throw new InvalidOperationException($"A source named '{registration.Name}' is already registered (by {existing.Origin}); source names must be unique.");
        }

        var environmentName = SourceConfiguration.EnvironmentName(registration.Name);
        if (_sources.FirstOrDefault(s => string.Equals(SourceConfiguration.EnvironmentName(s.Name), environmentName, StringComparison.OrdinalIgnoreCase)) is { } twin)
        {
            throw new InvalidOperationException($"Source '{registration.Name}' cannot be registered next to source '{twin.Name}' (by {twin.Origin}): both read their settings from Ingestion:Sources:{environmentName} (the environment-variable form of their names, Ingestion__Sources__{environmentName}__*); rename one.");
        }

        _sources.Add(registration);
    }
}
