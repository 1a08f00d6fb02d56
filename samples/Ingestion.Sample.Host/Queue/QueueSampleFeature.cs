using System.Security.Cryptography;
using System.Xml;
using System.Xml.Linq;
using Ingestion.Postgres.Hosting;
using Ingestion.Postgres.Queue;
using Ingestion.Postgres.Sql;
using Ingestion.Queue;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Ingestion.Sample.Host.Queue;

/// <summary>
/// The queue-backed source of the sample: documents in a folder (a stand-in for a storage bucket) are
/// listed and their paths enqueued in the <c>documents</c> work queue; workers (two at a time in this host)
/// parse each document and upsert it into <c>sample_documents</c>. A malformed document is retried with
/// back-off and ends dead with its parse error. Settings: <c>Ingestion:Queues:documents</c>.
/// </summary>
public sealed class QueueSampleFeature : ISampleFeature
{
    /// <summary>The queue name.</summary>
    public const string QueueName = "documents";

    public void Configure(IIngestionBuilder ingestion, IConfiguration configuration, string dataDirectory)
    {
        ingestion.UsePostgresQueue();
        var folder = new DocumentFolder(Path.Combine(dataDirectory, "documents"));
        ingestion.Services.AddSingleton(folder);
        ingestion.Services.AddSingleton<IQueueStorageListing>(folder);
        ingestion.Services.AddSingleton<DocumentTable>();
        ingestion.AddWorkQueue<DocumentHandler>(QueueName, 2, o =>
        {
            o.BatchSize = 10;
            o.MaxAttempts = 3;
            o.RetryBaseDelay = TimeSpan.FromMilliseconds(500);
            o.RetryMaxDelay = TimeSpan.FromSeconds(5);
            o.PollInterval = TimeSpan.FromSeconds(5);
        });
    }
}

/// <summary>The folder of documents: the "storage" whose listing feeds the queue and the reconciliation.</summary>
/// <param name="Root">The folder.</param>
public sealed record DocumentFolder(string Root) : IQueueStorageListing
{
    /// <inheritdoc />
    public string Queue => QueueSampleFeature.QueueName;

    /// <inheritdoc />
    public IAsyncEnumerable<string> ListAsync(CancellationToken cancellationToken) => ListAsync();

    /// <summary>Lists the documents' keys (paths relative to the folder, with '/'), in ordinal order, streamed.</summary>
    public async IAsyncEnumerable<string> ListAsync()
    {
        var root = Path.GetFullPath(Root);
        foreach (var path in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            yield return Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/');
        }

        await Task.CompletedTask;
    }

    /// <summary>The file of a key, refusing keys that leave the folder.</summary>
    /// <param name="key">The key.</param>
    /// <returns>The full path.</returns>
    public string PathOf(string key)
    {
        var root = Path.GetFullPath(Root) + Path.DirectorySeparatorChar;
        var full = Path.GetFullPath(Path.Combine(root, key));
        return full.StartsWith(root, StringComparison.Ordinal)
            ? full
            : throw new InvalidDataException($"Queue key '{key}' points outside the document folder.");
    }
}

/// <summary>The target table <c>sample_documents</c> (in the default target schema), created on first use.</summary>
public sealed class DocumentTable(IngestionDatabase database) : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private bool _ready;

    /// <summary>The quoted table name.</summary>
    public string Name { get; } = PgIdentifier.Qualify(database.Options.DefaultTargetSchema, "sample_documents");

    /// <summary>The database.</summary>
    public IngestionDatabase Database => database;

    /// <summary>Creates the table once.</summary>
    public async Task EnsureAsync(CancellationToken cancellationToken)
    {
        if (_ready)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (!_ready)
            {
                await using var cmd = database.DataSource.CreateCommand($"""
                    CREATE TABLE IF NOT EXISTS {Name} (
                        path text PRIMARY KEY,
                        document_id text NOT NULL,
                        title text NOT NULL,
                        published date,
                        bytes int NOT NULL,
                        sha256 text NOT NULL,
                        attempt int NOT NULL,
                        processed_at timestamptz NOT NULL DEFAULT now())
                    """);
                await cmd.ExecuteNonQueryAsync(cancellationToken);
                _ready = true;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();
}

/// <summary>Parses one document and upserts it (idempotent: a redelivered item rewrites the same row).</summary>
public sealed class DocumentHandler(DocumentFolder folder, DocumentTable table) : IWorkItemHandler
{
    public async Task HandleAsync(WorkItem item, CancellationToken cancellationToken)
    {
        await table.EnsureAsync(cancellationToken);
        var bytes = await File.ReadAllBytesAsync(folder.PathOf(item.Key), cancellationToken);
        XDocument doc;
        try
        {
            using var stream = new MemoryStream(bytes);
            doc = XDocument.Load(stream, LoadOptions.SetLineInfo);
        }
        catch (XmlException e)
        {
            throw new InvalidDataException($"Document '{item.Key}' is not well-formed XML at line {e.LineNumber}, position {e.LinePosition}: {e.Message}", e);
        }

        var root = doc.Root ?? throw new InvalidDataException($"Document '{item.Key}' has no root element.");
        var title = root.Element("TITRE")?.Value.Trim();
        if (string.IsNullOrEmpty(title))
        {
            throw new InvalidDataException($"Document '{item.Key}', element <{root.Name}> at line {((IXmlLineInfo)root).LineNumber}: field TITRE is missing.");
        }

        DateOnly? published = DateOnly.TryParseExact(root.Element("DATE_PUBLI")?.Value, "yyyy-MM-dd", out var d) ? d : null;
        await using var cmd = table.Database.DataSource.CreateCommand($"""
            INSERT INTO {table.Name} (path, document_id, title, published, bytes, sha256, attempt)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (path) DO UPDATE SET document_id = excluded.document_id, title = excluded.title, published = excluded.published,
                bytes = excluded.bytes, sha256 = excluded.sha256, attempt = excluded.attempt, processed_at = now()
            """);
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = item.Key });
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = (string?)root.Attribute("id") ?? Path.GetFileNameWithoutExtension(item.Key) });
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = title });
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = published is { } p ? p : DBNull.Value, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Date });
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = bytes.Length });
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = Convert.ToHexStringLower(SHA256.HashData(bytes)) });
        cmd.Parameters.Add(new Npgsql.NpgsqlParameter { Value = item.Attempt });
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
