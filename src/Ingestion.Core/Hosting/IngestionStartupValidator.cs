using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Ingestion.Hosting;

/// <summary>Runs every start-up check of the catalog and fails with all problems at once.</summary>
internal sealed class IngestionStartupValidator(IServiceProvider services) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        Validate(services);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Throws <see cref="OptionsValidationException"/> listing every configuration problem.</summary>
    internal static void Validate(IServiceProvider services)
    {
        var catalog = services.GetRequiredService<SourceCatalog>();
        var errors = new List<string>();
        try
        {
            _ = services.GetRequiredService<IOptions<IngestionOptions>>().Value;
        }
        catch (OptionsValidationException e)
        {
            errors.AddRange(e.Failures);
        }

        foreach (var check in catalog.StartupChecks)
        {
            try
            {
                errors.AddRange(check(services));
            }
            catch (OptionsValidationException e)
            {
                errors.AddRange(e.Failures);
            }
            catch (InvalidOperationException e)
            {
                errors.Add(e.Message);
            }
        }

        if (errors.Count > 0)
        {
            throw new OptionsValidationException(IngestionOptions.SectionName, typeof(IngestionOptions), errors);
        }
    }
}
