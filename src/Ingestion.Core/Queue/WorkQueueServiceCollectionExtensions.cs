using Ingestion.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Ingestion.Queue;

/// <summary>Registers workers that drain durable work queues.</summary>
public static class WorkQueueServiceCollectionExtensions
{
    /// <summary>
    /// Adds a hosted worker that drains <paramref name="queue"/> with <typeparamref name="THandler"/>, processing up to
    /// <paramref name="concurrency"/> items at once. Settings bind from <c>Ingestion:Queues:&lt;queue&gt;</c> (after
    /// <paramref name="concurrency"/>, before <paramref name="configure"/>) and are validated at start. A queue store must be
    /// registered too (e.g. <c>UsePostgresQueue()</c> of <c>Ingestion.Postgres</c>).
    /// </summary>
    /// <typeparam name="THandler">The handler; resolved in a new scope for each item.</typeparam>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="queue">The queue name.</param>
    /// <param name="concurrency">Items processed at once by this host.</param>
    /// <param name="configure">Adjusts the settings.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentException">The queue name is invalid.</exception>
    /// <exception cref="InvalidOperationException">A worker for this queue is already registered.</exception>
    public static IIngestionBuilder AddWorkQueue<THandler>(this IIngestionBuilder builder, string queue, int concurrency, Action<WorkQueueOptions>? configure = null)
        where THandler : class, IWorkItemHandler
    {
        ArgumentNullException.ThrowIfNull(builder);
        WorkQueueOptions.ThrowIfInvalidQueueName(queue);
        var services = builder.Services;
        if (services.Any(d => d.ServiceType == typeof(WorkQueueRegistration) && d.ImplementationInstance is WorkQueueRegistration r && r.Queue == queue))
        {
            throw new InvalidOperationException($"A worker for queue '{queue}' is already registered; register each queue once (raise its concurrency instead).");
        }

        services.AddSingleton(new WorkQueueRegistration(queue, typeof(THandler)));
        services.TryAddTransient<THandler>();
        services.TryAddSingleton(TimeProvider.System);
        services.Configure<WorkQueueOptions>(queue, o => o.Concurrency = concurrency);
        var options = services.AddOptions<WorkQueueOptions>(queue);
        if (builder.Configuration is { } config)
        {
            options.Bind(config.GetSection($"{WorkQueueOptions.SectionName}:{queue}"));
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        builder.Catalog().AddStartupCheck(sp =>
        {
            var errors = sp.GetRequiredService<IOptionsMonitor<WorkQueueOptions>>().Get(queue).Validate(queue).ToList();
            if (sp.GetService<IWorkQueueStore>() is null)
            {
                errors.Add($"Queue '{queue}' has a worker but no queue store is registered: call UsePostgresQueue() (Ingestion.Postgres).");
            }

            return errors;
        });

        services.AddSingleton<IHostedService>(sp => new WorkQueueHostedService<THandler>(queue, sp));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, QueueTelemetrySampler>());
        return builder;
    }
}

/// <summary>A queue with a registered worker.</summary>
/// <param name="Queue">The queue name.</param>
/// <param name="HandlerType">The handler class.</param>
public sealed record WorkQueueRegistration(string Queue, Type HandlerType);

/// <summary>Creates the worker when the host starts (after start-up validation), so bad settings fail validation, not resolution.</summary>
internal sealed class WorkQueueHostedService<THandler>(string queue, IServiceProvider services) : IHostedService
    where THandler : class, IWorkItemHandler
{
    private WorkQueueWorker? _worker;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _worker = new WorkQueueWorker(
            queue,
            services.GetRequiredService<IOptionsMonitor<WorkQueueOptions>>().Get(queue),
            services.GetRequiredService<IWorkQueueStore>(),
            async (item, ct) =>
            {
                var scope = services.CreateAsyncScope();
                await using (scope.ConfigureAwait(false))
                {
                    await scope.ServiceProvider.GetRequiredService<THandler>().HandleAsync(item, ct).ConfigureAwait(false);
                }
            },
            services.GetRequiredService<TimeProvider>(),
            services.GetService<ILoggerFactory>()?.CreateLogger("Ingestion.Queue." + queue));
        return _worker.StartAsync(cancellationToken);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_worker is not null)
        {
            await _worker.StopAsync(cancellationToken).ConfigureAwait(false);
            await _worker.DisposeAsync().ConfigureAwait(false);
        }
    }
}
