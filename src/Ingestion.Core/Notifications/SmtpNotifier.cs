using System.Net;
using System.Net.Mail;

namespace Ingestion.Notifications;

/// <summary>Sends notifications as plain-text e-mail over SMTP.</summary>
/// <param name="options">The SMTP settings (validated).</param>
public sealed class SmtpNotifier(SmtpOptions options) : INotifier
{
    /// <inheritdoc />
    public string Name => $"smtp {options.Host}:{options.Port}";

    /// <inheritdoc />
    public async Task SendAsync(Notification notification, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(notification);
        using var message = new MailMessage
        {
            From = new MailAddress(options.From!),
            Subject = notification.Title,
            Body = notification.Text,
            IsBodyHtml = false,
        };
        foreach (var to in options.To)
        {
            message.To.Add(to);
        }

        using var client = new SmtpClient(options.Host, options.Port)
        {
            EnableSsl = options.EnableSsl,
            DeliveryMethod = SmtpDeliveryMethod.Network,
        };
        if (!string.IsNullOrEmpty(options.UserName))
        {
            client.Credentials = new NetworkCredential(options.UserName, options.Password);
        }

        await client.SendMailAsync(message, cancellationToken).ConfigureAwait(false);
    }
}
