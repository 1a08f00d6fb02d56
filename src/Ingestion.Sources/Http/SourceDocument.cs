using System.Text;

namespace Ingestion.Sources.Http;

/// <summary>
/// A whole document (a CSV file, a feed, a GeoJSON file) opened by <see cref="SourceHttpClient.OpenDocumentAsync"/>
/// from a URL or a local path, with the validators to save once it has been read to its end. Dispose it.
/// </summary>
public sealed class SourceDocument : IAsyncDisposable, IDisposable
{
    private readonly Stream _content;
    private readonly IAsyncDisposable? _owner;
    private readonly string? _knownHash;

    internal SourceDocument(Stream content, IAsyncDisposable? owner, string location, string? mediaType, Encoding? encoding, string? etag, DateTimeOffset? lastModified, string? knownHash, long? length)
    {
        _content = content;
        _owner = owner;
        Location = location;
        MediaType = mediaType;
        Encoding = encoding;
        ETag = etag;
        LastModified = lastModified;
        _knownHash = knownHash;
        Length = length;
    }

    /// <summary>The URL (redacted) or path the document came from, for messages.</summary>
    public string Location { get; }

    /// <summary>The content, positioned at its start. Read it once, to its end, then save <see cref="ContentHash"/>.</summary>
    public Stream Content => _content;

    /// <summary>The media type the server sent, or <see langword="null"/>.</summary>
    public string? MediaType { get; }

    /// <summary>The encoding the server named, or <see langword="null"/>.</summary>
    public Encoding? Encoding { get; }

    /// <summary>The document's <c>ETag</c> (for a file: its length and modification time).</summary>
    public string? ETag { get; }

    /// <summary>The document's <c>Last-Modified</c> (for a file: its modification time).</summary>
    public DateTimeOffset? LastModified { get; }

    /// <summary>The size in bytes when known in advance.</summary>
    public long? Length { get; }

    /// <summary>The SHA-256 (lowercase hex) of the content: known at once when it was spooled, otherwise once read to its end; <see langword="null"/> for files.</summary>
    public string? ContentHash => _knownHash ?? (_content as GuardedStream)?.HashHex;

    /// <summary>Creates the checkpoint that marks this document as read: its validators and hash, with a cursor and values.</summary>
    /// <param name="cursor">The cursor to save, or <see langword="null"/> to keep the saved one.</param>
    /// <param name="values">Extra state values (e.g. the request budget's).</param>
    /// <returns>The checkpoint.</returns>
    public SourceCheckpoint CreateCheckpoint(string? cursor, IReadOnlyDictionary<string, string>? values = null) =>
        new(cursor) { ETag = ETag, LastModified = LastModified, ContentHash = ContentHash, Values = values };

    /// <inheritdoc />
    public void Dispose()
    {
        _content.Dispose();
        (_owner as IDisposable)?.Dispose();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _content.DisposeAsync().ConfigureAwait(false);
        if (_owner is not null)
        {
            await _owner.DisposeAsync().ConfigureAwait(false);
        }
    }
}
