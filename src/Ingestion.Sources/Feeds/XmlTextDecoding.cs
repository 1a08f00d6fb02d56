using System.Text;

namespace Ingestion.Sources.Feeds;

/// <summary>
/// Decides the character encoding of an XML document the way RFC 7303 orders it: a byte-order mark,
/// then the <c>charset</c> of the Content-Type, then the encoding declared in the XML prolog, then UTF-8.
/// Legacy code pages (windows-1252, ISO-8859-15...) come from <see cref="CodePagesEncodingProvider"/>
/// without registering it process-wide. Invalid bytes are an error, never silently replaced.
/// </summary>
internal static class XmlTextDecoding
{
    private const int SniffLength = 512;

    /// <summary>Opens a decoding reader over the document.</summary>
    /// <param name="stream">The raw bytes.</param>
    /// <param name="charset">The Content-Type charset, or <see langword="null"/>.</param>
    /// <param name="describe">Prefixes error messages (e.g. "Source 'x'").</param>
    /// <returns>The reader and the name of the encoding chosen.</returns>
    public static (TextReader Reader, string EncodingName) Open(Stream stream, string? charset, string describe)
    {
        var prefix = new byte[SniffLength];
        var count = 0;
        while (count < prefix.Length)
        {
            var n = stream.Read(prefix, count, prefix.Length - count);
            if (n == 0)
            {
                break;
            }

            count += n;
        }

        var combined = new PrefixedStream(prefix, count, stream);
        Encoding encoding;
        var bom = BomEncoding(prefix.AsSpan(0, count));
        if (bom is not null)
        {
            encoding = bom;
        }
        else if (!string.IsNullOrWhiteSpace(charset))
        {
            encoding = Resolve(charset.Trim().Trim('"', '\''), describe, "the Content-Type charset");
        }
        else if (DeclaredEncoding(prefix.AsSpan(0, count)) is { } declared)
        {
            encoding = Resolve(declared, describe, "the XML declaration");
        }
        else
        {
            encoding = Strict(Encoding.UTF8);
        }

        return (new StreamReader(combined, encoding, detectEncodingFromByteOrderMarks: true, bufferSize: 16 * 1024, leaveOpen: true), encoding.WebName);
    }

    /// <summary>Resolves an encoding name to a strict decoder, or throws naming where the name came from.</summary>
    /// <param name="name">The encoding name.</param>
    /// <param name="describe">The message prefix.</param>
    /// <param name="origin">Where the name came from.</param>
    /// <returns>The encoding.</returns>
    public static Encoding Resolve(string name, string describe, string origin)
    {
        Encoding? encoding = null;
        try
        {
            encoding = Encoding.GetEncoding(name);
        }
        catch (ArgumentException)
        {
            encoding = CodePagesEncodingProvider.Instance.GetEncoding(name);
        }

        if (encoding is null)
        {
            throw new IngestionException($"{describe}: the encoding '{name}' named by {origin} is not supported.") { Field = "encoding" };
        }

        return Strict(encoding);
    }

    private static Encoding Strict(Encoding encoding)
    {
        var strict = (Encoding)encoding.Clone();
        strict.DecoderFallback = DecoderFallback.ExceptionFallback;
        return strict;
    }

    private static Encoding? BomEncoding(ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            return Strict(Encoding.UTF8);
        }

        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]))
        {
            return Encoding.Unicode;
        }

        return bytes.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF]) ? Encoding.BigEndianUnicode : null;
    }

    private static string? DeclaredEncoding(ReadOnlySpan<byte> bytes)
    {
        // The declaration is ASCII in every ASCII-compatible encoding: <?xml version="1.0" encoding="..."?>
        if (!bytes.StartsWith("<?xml"u8))
        {
            return null;
        }

        var end = bytes.IndexOf("?>"u8);
        if (end < 0)
        {
            return null;
        }

        var declaration = Encoding.ASCII.GetString(bytes[..end]);
        var at = declaration.IndexOf("encoding", StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var rest = declaration[(at + "encoding".Length)..].TrimStart();
        if (!rest.StartsWith('='))
        {
            return null;
        }

        rest = rest[1..].TrimStart();
        if (rest.Length < 2 || rest[0] is not ('"' or '\''))
        {
            return null;
        }

        var close = rest.IndexOf(rest[0], 1);
        return close > 1 ? rest[1..close] : null;
    }

    /// <summary>A read-only stream that replays the sniffed prefix, then the rest of the inner stream.</summary>
    private sealed class PrefixedStream(byte[] prefix, int prefixLength, Stream inner) : Stream
    {
        private int _position;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_position < prefixLength)
            {
                var n = Math.Min(buffer.Length, prefixLength - _position);
                prefix.AsSpan(_position, n).CopyTo(buffer);
                _position += n;
                return n;
            }

            return inner.Read(buffer);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_position < prefixLength)
            {
                return Read(buffer.Span);
            }

            return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
