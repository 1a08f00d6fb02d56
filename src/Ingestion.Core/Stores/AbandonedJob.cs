using System.Globalization;

namespace Ingestion.Stores;

/// <summary>
/// The error text of an import job closed as abandoned (its run stopped without closing it), written alike by every
/// job store: a store that closes jobs on the server fills <see cref="ErrorTemplate"/> there, one that closes them in
/// process calls <see cref="Error"/>.
/// </summary>
public static class AbandonedJob
{
    /// <summary>
    /// The text with two <c>%s</c> placeholders: the run's host, then its last sign of life in UTC as
    /// <c>yyyy-MM-dd HH:mm:ssZ</c> (the form of PostgreSQL's <c>format()</c>).
    /// </summary>
    public const string ErrorTemplate = "Abandoned: the run on host \"%s\" stopped without closing its job (last alive %s); the counts are those of its committed batches.";

    /// <summary>The error text of a job whose run on <paramref name="host"/> was last alive at <paramref name="lastAlive"/>.</summary>
    /// <param name="host">The host the run was on.</param>
    /// <param name="lastAlive">Its last heartbeat (or its start, without one).</param>
    /// <returns><see cref="ErrorTemplate"/> filled in.</returns>
    public static string Error(string host, DateTimeOffset lastAlive)
    {
        ArgumentNullException.ThrowIfNull(host);

        // Split, not replaced one after the other: a host name holding "%s" stays as it is.
        var parts = ErrorTemplate.Split("%s");
        return string.Concat(parts[0], host, parts[1], lastAlive.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), "Z", parts[2]);
    }
}
