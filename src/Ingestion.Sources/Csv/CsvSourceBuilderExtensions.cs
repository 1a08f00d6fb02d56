using Ingestion.Hosting;
using Ingestion.Sources.Http;

namespace Ingestion.Sources.Csv;

/// <summary>Registers CSV sources.</summary>
public static class CsvSourceBuilderExtensions
{
    /// <summary>
    /// Adds a CSV source of dynamic records: its <see cref="CsvSourceOptions"/> bind from
    /// <c>Ingestion:Sources:&lt;name&gt;</c> and are validated at start.
    /// </summary>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="name">The source name.</param>
    /// <param name="configure">Adjusts the CSV options after binding.</param>
    /// <param name="configureSource">Adjusts the runtime settings (table, key, batch size...).</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddCsvSource(this IIngestionBuilder builder, string name, Action<CsvSourceOptions>? configure = null, Action<SourceOptions>? configureSource = null)
    {
        return builder.AddHttpSource<CsvSource, CsvSourceOptions>(name, configure, configureSource);
    }

    /// <summary>
    /// Adds a CSV source of typed records: <typeparamref name="TRecord"/> is a CsvHelper <c>[CsvRecord]</c> partial
    /// class (the project needs its own reference to CsvHelper for the mapping generator) with an Ingestion key.
    /// </summary>
    /// <typeparam name="TRecord">The record class.</typeparam>
    /// <param name="builder">The ingestion builder.</param>
    /// <param name="name">The source name.</param>
    /// <param name="configure">Adjusts the CSV options after binding (<see cref="CsvSourceOptions.Columns"/> and <see cref="CsvSourceOptions.Key"/> are not used).</param>
    /// <param name="configureSource">Adjusts the runtime settings.</param>
    /// <returns>The builder.</returns>
    public static IIngestionBuilder AddCsvSource<TRecord>(this IIngestionBuilder builder, string name, Action<CsvSourceOptions>? configure = null, Action<SourceOptions>? configureSource = null)
        where TRecord : class
    {
        return builder.AddHttpSource<CsvSource<TRecord>, CsvSourceOptions>(name, configure, configureSource);
    }
}
