using System.Net.Mail;

namespace Ingestion.Notifications;

/// <summary>Notification settings, bound from <c>Ingestion:Notifications</c>; changes apply without restart.</summary>
public sealed class NotificationOptions
{
    /// <summary>The configuration section name under <c>Ingestion</c>.</summary>
    public const string SectionName = "Notifications";

    /// <summary>Alert when a slot fails (after its retries).</summary>
    public bool OnFailure { get; set; } = true;

    /// <summary>Alert when a schedule has failed <see cref="RepeatedFailureThreshold"/> slots in a row.</summary>
    public bool OnRepeatedFailure { get; set; } = true;

    /// <summary>Consecutive failed slots that make a repeated failure.</summary>
    public int RepeatedFailureThreshold { get; set; } = 3;

    /// <summary>Tell when a schedule succeeds after failing.</summary>
    public bool OnRecovery { get; set; } = true;

    /// <summary>Tell when a slot succeeds and changed rows (created, updated or deleted).</summary>
    public bool OnSuccessWithChanges { get; set; }

    /// <summary>A failing schedule alerts at most once per window for each kind of alert (no alert storms).</summary>
    public TimeSpan AlertWindow { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long one notifier may take before it is abandoned (and logged).</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Webhooks (Slack-compatible JSON <c>{"text": ...}</c>), by name.</summary>
    public IDictionary<string, WebhookOptions> Webhooks { get; } = new Dictionary<string, WebhookOptions>(StringComparer.Ordinal);

    /// <summary>E-mail over SMTP; off when <see cref="SmtpOptions.Host"/> is unset.</summary>
    public SmtpOptions Smtp { get; set; } = new();

    /// <summary>Returns the problems with these settings, each naming the setting.</summary>
    /// <returns>The problems; empty when valid.</returns>
    public IReadOnlyList<string> Validate()
    {
        const string prefix = "Ingestion:Notifications";
        var errors = new List<string>();
        if (RepeatedFailureThreshold < 2)
        {
            errors.Add($"{prefix}:RepeatedFailureThreshold must be at least 2 (was {RepeatedFailureThreshold}).");
        }

        if (AlertWindow < TimeSpan.Zero)
        {
            errors.Add($"{prefix}:AlertWindow must not be negative (was {AlertWindow}).");
        }

        if (Timeout <= TimeSpan.Zero)
        {
            errors.Add($"{prefix}:Timeout must be positive (was {Timeout}).");
        }

        foreach (var (name, hook) in Webhooks)
        {
            var at = $"{prefix}:Webhooks:{name}:Url";
            if (string.IsNullOrWhiteSpace(hook?.Url))
            {
                errors.Add($"{at} is not set.");
            }
            else if (!Uri.TryCreate(hook.Url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            {
                errors.Add($"{at} '{hook.Url}' is not an absolute http(s) URL.");
            }
        }

        if (Smtp is { Host: { Length: > 0 } } smtp)
        {
            var at = $"{prefix}:Smtp";
            if (smtp.Port is < 1 or > 65535)
            {
                errors.Add($"{at}:Port {smtp.Port} is not a TCP port.");
            }

            if (!MailAddress.TryCreate(smtp.From, out _))
            {
                errors.Add($"{at}:From '{smtp.From}' is not an e-mail address.");
            }

            if (smtp.To.Count == 0)
            {
                errors.Add($"{at}:To lists no recipient.");
            }

            foreach (var (to, i) in smtp.To.Select((t, i) => (t, i)))
            {
                if (!MailAddress.TryCreate(to, out _))
                {
                    errors.Add($"{at}:To:{i} '{to}' is not an e-mail address.");
                }
            }
        }

        return errors;
    }
}

/// <summary>A webhook receiving Slack-compatible JSON.</summary>
public sealed class WebhookOptions
{
    /// <summary>The absolute http(s) URL. Required.</summary>
    public string? Url { get; set; }

    /// <summary>Sends to this webhook.</summary>
    public bool Enabled { get; set; } = true;
}

/// <summary>E-mail over SMTP.</summary>
public sealed class SmtpOptions
{
    /// <summary>The SMTP server; e-mail is off when unset.</summary>
    public string? Host { get; set; }

    /// <summary>The port.</summary>
    public int Port { get; set; } = 25;

    /// <summary>Use TLS (STARTTLS).</summary>
    public bool EnableSsl { get; set; }

    /// <summary>The user name, when the server wants one.</summary>
    public string? UserName { get; set; }

    /// <summary>The password (from a secret store, never from a committed file).</summary>
    public string? Password { get; set; }

    /// <summary>The sender address.</summary>
    public string? From { get; set; }

    /// <summary>The recipients.</summary>
    public IList<string> To { get; } = new List<string>();
}
