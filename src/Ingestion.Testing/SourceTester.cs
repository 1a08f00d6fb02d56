using System.Globalization;
using Ingestion.Hosting;
using Ingestion.Running;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Testing;

/// <summary>Runs sources the way the runtime reads them, without a database, and checks that they resume from their checkpoints.</summary>
public static class SourceTester
{
    /// <summary>
    /// Reads a source to its end (or to <see cref="SourceTestOptions.MaxRecords"/>) against a <see cref="SourceTestContext"/>,
    /// collecting its records, rejected records and checkpoints. Checks what the runtime would refuse:
    /// a null record, a typed record class without a declared key.
    /// </summary>
    /// <typeparam name="TRecord">The record type.</typeparam>
    /// <param name="source">The source.</param>
    /// <param name="options">The starting state, mode, caps; <see langword="null"/> for a first incremental run.</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>What the run produced.</returns>
    /// <exception cref="SourceAssertionException">The source broke the contract, or exceeded <see cref="SourceTestOptions.Timeout"/>.</exception>
    /// <exception cref="SourceRunFailedException{TRecord}">The source threw; its <see cref="SourceRunFailedException{TRecord}.Run"/> holds the records, rejected records and checkpoints read before.</exception>
    public static async Task<SourceTestRun<TRecord>> RunAsync<TRecord>(IIngestionSource<TRecord> source, SourceTestOptions? options = null, CancellationToken cancellationToken = default)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(source);
        options ??= new SourceTestOptions();
        if (typeof(TRecord) != typeof(DynamicRecord))
        {
            try
            {
                _ = RecordSchema.FromType(typeof(TRecord));
            }
            catch (ArgumentException e)
            {
                throw new SourceAssertionException($"Record type {typeof(TRecord).FullName} cannot be ingested: {e.Message}", e);
            }
        }

        var visible = options.Mode == IngestionMode.FullRefresh
            ? options.State with { Cursor = null, ETag = null, LastModified = null, ContentHash = null }
            : options.State;
        var context = new SourceTestContext
        {
            Name = options.SourceName,
            RunMode = options.Mode,
            SavedState = visible,
            RunParameters = options.Parameters,
            RunLimits = options.MaxRecords is { } max ? options.Limits with { MaxRecords = max } : options.Limits,
            Clock = options.TimeProvider,
            DryRun = options.DryRun,
        };

        var records = new List<TRecord>();
        var (stoppedByCap, failure) = await ReadAllAsync(source, context, records, options, cancellationToken).ConfigureAwait(false);
        var run = new SourceTestRun<TRecord>(context, records, stoppedByCap, failure);
        if (failure is not null)
        {
            throw new SourceRunFailedException<TRecord>(run, failure);
        }

        return run;
    }

    /// <summary>
    /// The source registered as <paramref name="name"/> in a container, created as the runner creates it for a run, after
    /// the start-up checks the runner makes (every source's options validated): a configuration error fails here with
    /// the <see cref="Microsoft.Extensions.Options.OptionsValidationException"/> the host would get at start.
    /// </summary>
    /// <typeparam name="TRecord">The record type the source yields (<see cref="DynamicRecord"/> for the built-in dynamic sources).</typeparam>
    /// <param name="name">The source name, as registered (<c>AddCsvSource("parks", ...)</c>).</param>
    /// <param name="services">The built container (<c>services.AddIngestion(...)</c> and the source registrations).</param>
    /// <returns>The source. Run it with <see cref="SourceTestOptions.SourceName"/> set to <paramref name="name"/>, as <see cref="RunAsync{TRecord}(string, IServiceProvider, SourceTestOptions?, CancellationToken)"/> does.</returns>
    /// <exception cref="SourceAssertionException">No source has that name, or it yields other records than <typeparamref name="TRecord"/>.</exception>
    public static IIngestionSource<TRecord> ForSource<TRecord>(string name, IServiceProvider services)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(services);
        var catalog = services.GetService<SourceCatalog>()
            ?? throw new SourceAssertionException("The container has no Ingestion sources: call services.AddIngestion(...) and register the source first.");
        var registration = catalog.Find(name)
            ?? throw new SourceAssertionException($"No source is registered as '{name}'; the container has: {string.Join(", ", catalog.Sources.Select(s => $"'{s.Name}'"))}.");

        // The runner validates every setting when it is created, as a host does at start.
        _ = services.GetRequiredService<IIngestionRunner>();
        var source = registration.Factory(services);
        return source as IIngestionSource<TRecord>
            ?? throw new SourceAssertionException($"Source '{name}' ({source.GetType().Name}) yields {source.RecordType.Name} records, not {typeof(TRecord).Name}.");
    }

    /// <summary>
    /// Runs the source registered as <paramref name="name"/> (see <see cref="ForSource{TRecord}(string, IServiceProvider)"/>)
    /// as <see cref="RunAsync{TRecord}(IIngestionSource{TRecord}, SourceTestOptions?, CancellationToken)"/> does, the
    /// context reporting that name, so the source reads its own named options.
    /// </summary>
    /// <typeparam name="TRecord">The record type.</typeparam>
    /// <param name="name">The source name.</param>
    /// <param name="services">The built container.</param>
    /// <param name="options">The starting state, mode, caps (<see cref="SourceTestOptions.SourceName"/> is replaced by <paramref name="name"/>).</param>
    /// <param name="cancellationToken">Cancels the run.</param>
    /// <returns>What the run produced.</returns>
    public static Task<SourceTestRun<TRecord>> RunAsync<TRecord>(string name, IServiceProvider services, SourceTestOptions? options = null, CancellationToken cancellationToken = default)
        where TRecord : class
    {
        var source = ForSource<TRecord>(name, services);
        return RunAsync(source, (options ?? new SourceTestOptions()) with { SourceName = name }, cancellationToken);
    }

    private static async Task<(bool StoppedByCap, Exception? Failure)> ReadAllAsync<TRecord>(IIngestionSource<TRecord> source, SourceTestContext context, List<TRecord> records, SourceTestOptions options, CancellationToken cancellationToken)
        where TRecord : class
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.Timeout);
        var stoppedByCap = false;
        Exception? failure = null;
        var enumerator = source.ReadAsync(context, timeout.Token).GetAsyncEnumerator(timeout.Token);
        Task<bool>? pending = null;
        try
        {
            while (true)
            {
                if (options.MaxRecords is { } cap && records.Count >= cap)
                {
                    stoppedByCap = true;
                    break;
                }

                pending = enumerator.MoveNextAsync().AsTask();
                var more = await pending.WaitAsync(timeout.Token).ConfigureAwait(false);
                pending = null;
                if (!more)
                {
                    break;
                }

                var record = enumerator.Current ?? throw new SourceAssertionException(
                    $"Source '{context.SourceName}' yielded a null record after record {records.Count.ToString(CultureInfo.InvariantCulture)}.");
                records.Add(record);
                context.RecordsYielded = records.Count;
            }
        }
        catch (OperationCanceledException e) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new SourceAssertionException($"Source '{context.SourceName}' did not finish within {options.Timeout} (after {records.Count} records); does it honour its cancellation token?", e);
        }
        catch (Exception e) when (e is not SourceAssertionException && !(e is OperationCanceledException && cancellationToken.IsCancellationRequested))
        {
            // The source failed: what it read before is kept, as the runtime keeps what was committed.
            failure = e;
        }
        finally
        {
            // A source still inside MoveNextAsync (it ignored its token) cannot be disposed; leave it.
            if (pending is null || pending.IsCompleted)
            {
                await enumerator.DisposeAsync().ConfigureAwait(false);
            }
        }

        return (stoppedByCap, failure);
    }

    /// <summary>
    /// Checks that a source resumes from its checkpoints with nothing lost and nothing read twice: reads it once
    /// uninterrupted, then for each checkpoint of that run (or the one the interrupted run reached), starts a new
    /// source from the state saved at that checkpoint and checks that the records covered by the checkpoint plus
    /// the resumed run's records are exactly the uninterrupted run's records, by key and in order.
    /// </summary>
    /// <typeparam name="TRecord">The record type.</typeparam>
    /// <param name="createSource">Creates a fresh source (a run never reuses one).</param>
    /// <param name="key">The record's identity, used to compare runs.</param>
    /// <param name="interruptAfter">Interrupt the run after this many records and resume from the last checkpoint reached; <see langword="null"/> checks every checkpoint.</param>
    /// <param name="options">The starting state and mode of the uninterrupted run.</param>
    /// <param name="cancellationToken">Cancels the runs.</param>
    /// <returns>The uninterrupted run.</returns>
    /// <exception cref="SourceAssertionException">The source reported no checkpoint, or lost or repeated records when resumed.</exception>
    public static async Task<SourceTestRun<TRecord>> AssertResumesAsync<TRecord>(Func<IIngestionSource<TRecord>> createSource, Func<TRecord, string> key, int? interruptAfter = null, SourceTestOptions? options = null, CancellationToken cancellationToken = default)
        where TRecord : class
    {
        ArgumentNullException.ThrowIfNull(createSource);
        ArgumentNullException.ThrowIfNull(key);
        options ??= new SourceTestOptions();
        var full = await RunAsync(createSource(), options, cancellationToken).ConfigureAwait(false);
        var expected = full.Records.Select(key).ToList();
        if (full.Checkpoints.Count == 0)
        {
            throw new SourceAssertionException($"Source '{options.SourceName}' reported no checkpoint in a run of {full.Records.Count} records, so a failed run always starts over.");
        }

        var resumePoints = new List<(long Covered, SourceState State, string Label)>();
        if (interruptAfter is { } n)
        {
            var interrupted = await RunAsync(createSource(), options with { MaxRecords = n }, cancellationToken).ConfigureAwait(false);
            if (interrupted.LastCheckpoint is not { } last)
            {
                throw new SourceAssertionException($"Source '{options.SourceName}' reported no checkpoint in its first {n} records; an interrupted run would start over.");
            }

            Compare(expected, interrupted.Records.Take((int)last.RecordsBefore).Select(key).ToList(), "the interrupted run", options.SourceName);
            resumePoints.Add((last.RecordsBefore, interrupted.State, $"the last checkpoint of a run interrupted after {n} records (cursor '{last.Checkpoint.Cursor}')"));
        }
        else
        {
            for (var i = 0; i < full.Checkpoints.Count; i++)
            {
                resumePoints.Add((full.Checkpoints[i].RecordsBefore, full.StateAt(i), $"checkpoint {i + 1} of {full.Checkpoints.Count} (cursor '{full.Checkpoints[i].Checkpoint.Cursor}', after record {full.Checkpoints[i].RecordsBefore})"));
            }
        }

        foreach (var (covered, state, label) in resumePoints)
        {
            var resumed = await RunAsync(createSource(), options with { State = state, MaxRecords = null }, cancellationToken).ConfigureAwait(false);
            var actual = expected.Take((int)covered).Concat(resumed.Records.Select(key)).ToList();
            Compare(expected, actual, $"a run resumed from {label}", options.SourceName);
        }

        return full;
    }

    private static void Compare(List<string> expected, List<string> actual, string what, string sourceName)
    {
        for (var i = 0; i < Math.Min(expected.Count, actual.Count); i++)
        {
            if (!string.Equals(expected[i], actual[i], StringComparison.Ordinal))
            {
                var lost = expected.Except(actual, StringComparer.Ordinal).Take(5).ToList();
                var twice = actual.GroupBy(k => k, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).Take(5).ToList();
                throw new SourceAssertionException(
                    $"Source '{sourceName}': {what} differs from an uninterrupted run at record {i + 1}: expected key '{expected[i]}', got '{actual[i]}'." +
                    (lost.Count > 0 ? $" Lost: {string.Join(", ", lost)}." : string.Empty) +
                    (twice.Count > 0 ? $" Read twice: {string.Join(", ", twice)}." : string.Empty));
            }
        }

        if (what.StartsWith("a run resumed", StringComparison.Ordinal) && actual.Count != expected.Count)
        {
            throw new SourceAssertionException(
                actual.Count < expected.Count
                    ? $"Source '{sourceName}': {what} lost {expected.Count - actual.Count} records, the first being '{expected[actual.Count]}'."
                    : $"Source '{sourceName}': {what} read {actual.Count - expected.Count} records more than an uninterrupted run, the first extra being '{actual[expected.Count]}'.");
        }
    }
}
