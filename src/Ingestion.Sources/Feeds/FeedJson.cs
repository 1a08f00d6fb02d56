using System.Text;
using System.Text.Json;

namespace Ingestion.Sources.Feeds;

/// <summary>Writes the small JSON columns of feed items.</summary>
internal static class FeedJson
{
    public static string Strings(IReadOnlyList<string> values)
    {
        if (values.Count == 0)
        {
            return "[]";
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var v in values)
            {
                writer.WriteStringValue(v);
            }

            writer.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    public static string Enclosures(IReadOnlyList<FeedEnclosure> values)
    {
        if (values.Count == 0)
        {
            return "[]";
        }

        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var e in values)
            {
                writer.WriteStartObject();
                writer.WriteString("url", e.Url);
                if (e.MediaType is null)
                {
                    writer.WriteNull("type");
                }
                else
                {
                    writer.WriteString("type", e.MediaType);
                }

                if (e.Length is { } length)
                {
                    writer.WriteNumber("length", length);
                }
                else
                {
                    writer.WriteNull("length");
                }

                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }
}
