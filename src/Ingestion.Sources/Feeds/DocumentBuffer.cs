using System.Globalization;

namespace Ingestion.Sources.Feeds;

/// <summary>Reads a fetched document into memory, asynchronously and under a size cap, before it is parsed.</summary>
internal static class DocumentBuffer
{
    public static async Task<MemoryStream> ReadAsync(Stream content, long maxBytes, string sourceName, string location, CancellationToken cancellationToken)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[81920];
        try
        {
            while (true)
            {
                var n = await content.ReadAsync(chunk, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                if (buffer.Length + n > maxBytes)
                {
                    throw new IngestionException(string.Create(CultureInfo.InvariantCulture, $"Source '{sourceName}': the document {location} is larger than MaxDocumentBytes ({maxBytes} bytes)."))
                    {
                        SourceName = sourceName,
                        Position = string.Create(CultureInfo.InvariantCulture, $"byte {maxBytes}"),
                        Field = "MaxDocumentBytes",
                    };
                }

                buffer.Write(chunk, 0, n);
            }
        }
        catch
        {
            await buffer.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        buffer.Position = 0;
        return buffer;
    }
}
