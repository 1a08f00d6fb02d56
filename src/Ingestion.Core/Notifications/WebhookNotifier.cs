using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Ingestion.Notifications;

/// <summary>Posts Slack-compatible JSON (<c>{"text": "*title*\nbody"}</c>) to a webhook URL.</summary>
/// <param name="name">The webhook's name.</param>
/// <param name="url">The absolute http(s) URL.</param>
/// <param name="http">The HTTP client (owned by the caller).</param>
public sealed class WebhookNotifier(string name, Uri url, HttpClient http) : INotifier
{
    /// <inheritdoc />
    public string Name { get; } = $"webhook '{name}'";

    /// <summary>The JSON body sent for a notification.</summary>
    /// <param name="notification">The notification.</param>
    /// <returns>The JSON.</returns>
    public static string Payload(Notification notification)
    {
        ArgumentNullException.ThrowIfNull(notification);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("text", $"*{notification.Title}*\n{notification.Text}");
            w.WriteString("kind", notification.Kind.ToString());
            w.WriteString("schedule", notification.Outcome.Schedule);
            w.WriteString("source", notification.Outcome.Source);
            w.WriteString("status", notification.Outcome.Status.ToString());
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <inheritdoc />
    public async Task SendAsync(Notification notification, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        using var content = new StringContent(Payload(notification), Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        using var response = await http.PostAsync(url, content, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"{Name} answered {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
        }
    }
}
