using System.Net;
using System.Net.Sockets;
using System.Text;
using Ingestion.Notifications;
using Ingestion.Scheduling;
using Ingestion.TestSupport;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Ingestion.Core.Tests.Notifications;

public class NotificationTests
{
    private static readonly DateTimeOffset T0 = new(2026, 1, 5, 9, 0, 0, TimeSpan.Zero);

    private static ScheduleNotifier Notifier(NotificationOptions options, IScheduleStore store, FakeTimeProvider time, params INotifier[] extra) =>
        new(new StaticMonitor<NotificationOptions>(options), store, extra, time);

    /// <summary>Records a finished slot in the store, then tells the notifier, like the scheduler does.</summary>
    private static async Task FinishAsync(ScheduleNotifier notifier, IScheduleStore store, DateTimeOffset slot, ScheduleRunStatus status, IngestionCounts counts = default)
    {
        var claim = new SlotClaim { Schedule = "daily", Source = "tickets", Slot = slot, Host = "h1", Trigger = ScheduleTriggers.Schedule };
        await store.TryClaimAsync(claim, slot, slot.AddMinutes(1), CancellationToken.None);
        await store.CompleteAsync(claim, status, slot.AddSeconds(5), CancellationToken.None);
        var result = new IngestionResult { SourceName = "tickets", RunId = Guid.NewGuid(), Status = status == ScheduleRunStatus.Failed ? IngestionStatus.Failed : IngestionStatus.Succeeded, StartedAt = slot, FinishedAt = slot.AddSeconds(5), Counts = counts };
        await notifier.OnSlotCompletedAsync(new SlotOutcome { Schedule = "daily", Source = "tickets", Slot = slot, Trigger = claim.Trigger, Host = "h1", Status = status, Attempts = 3, Result = result, Error = status == ScheduleRunStatus.Failed ? "HttpRequestException: 503 from the API" : null }, CancellationToken.None);
    }

    [Fact]
    public async Task Webhook_gets_slack_json_for_failure_repeated_failure_and_recovery_once_per_window()
    {
        var bodies = new List<string>();
        await using var server = await TestHttpServer.StartAsync(async ctx =>
        {
            using var reader = new StreamReader(ctx.Request.Body);
            var body = await reader.ReadToEndAsync();
            lock (bodies)
            {
                bodies.Add($"{ctx.Request.ContentType}|{body}");
            }

            ctx.Response.StatusCode = 200;
        });
        var options = new NotificationOptions { RepeatedFailureThreshold = 3, AlertWindow = TimeSpan.FromHours(1) };
        options.Webhooks["slack"] = new WebhookOptions { Url = server.Url("hooks/T000/B000").ToString() };
        var store = new InMemoryScheduleStore();
        var time = new FakeTimeProvider(T0);
        using var notifier = Notifier(options, store, time);

        for (var i = 0; i < 5; i++)
        {
            await FinishAsync(notifier, store, T0.AddMinutes(10 * i), ScheduleRunStatus.Failed);
            time.Advance(TimeSpan.FromMinutes(10));
        }

        await FinishAsync(notifier, store, T0.AddHours(1), ScheduleRunStatus.Succeeded);

        // 5 failures within the hour: one failure alert, one repeated-failure alert (at the 3rd); then the recovery.
        Assert.Equal(3, bodies.Count);
        Assert.All(bodies, b => Assert.StartsWith("application/json", b, StringComparison.Ordinal));
        Assert.Contains("\"kind\":\"Failure\"", bodies[0], StringComparison.Ordinal);
        var text = System.Text.Json.JsonDocument.Parse(bodies[0].Split('|', 2)[1]).RootElement.GetProperty("text").GetString();
        Assert.StartsWith("*Ingestion: schedule 'daily' (source 'tickets') failed*\n", text, StringComparison.Ordinal);
        Assert.Contains("503 from the API", bodies[0], StringComparison.Ordinal);
        Assert.Contains("\"kind\":\"RepeatedFailure\"", bodies[1], StringComparison.Ordinal);
        Assert.Contains("failed 3 times in a row", bodies[1], StringComparison.Ordinal);
        Assert.Contains("\"kind\":\"Recovery\"", bodies[2], StringComparison.Ordinal);

        // After the window (and the recovery), a new failure alerts again.
        time.Advance(TimeSpan.FromHours(2));
        await FinishAsync(notifier, store, T0.AddHours(3), ScheduleRunStatus.Failed);
        Assert.Equal(4, bodies.Count);
        Assert.Contains("\"kind\":\"Failure\"", bodies[3], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Success_with_changes_is_told_only_when_rows_changed_and_enabled()
    {
        var sent = new List<Notification>();
        var options = new NotificationOptions { OnSuccessWithChanges = true };
        var store = new InMemoryScheduleStore();
        using var notifier = Notifier(options, store, new FakeTimeProvider(T0), new DelegateNotifier(n => sent.Add(n)));
        await FinishAsync(notifier, store, T0, ScheduleRunStatus.Succeeded, new IngestionCounts { Read = 5, Unchanged = 5 });
        await FinishAsync(notifier, store, T0.AddHours(1), ScheduleRunStatus.Succeeded, new IngestionCounts { Read = 5, Created = 2, Unchanged = 3 });
        var n = Assert.Single(sent);
        Assert.Equal(NotificationKind.SuccessWithChanges, n.Kind);
        Assert.Contains("created=2", n.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Smtp_sends_a_plain_text_mail_to_a_local_listener()
    {
        await using var smtp = await SmtpListener.StartAsync();
        var options = new NotificationOptions();
        options.Smtp.Host = "127.0.0.1";
        options.Smtp.Port = smtp.Port;
        options.Smtp.From = "ingestion@example.org";
        options.Smtp.To.Add("ops@example.org");
        options.Smtp.To.Add("dev@example.org");
        var store = new InMemoryScheduleStore();
        using var notifier = Notifier(options, store, new FakeTimeProvider(T0));
        await FinishAsync(notifier, store, T0, ScheduleRunStatus.Failed);

        var mail = Assert.Single(smtp.Messages);
        Assert.Equal("<ingestion@example.org>", mail.From);
        Assert.Equal(["<ops@example.org>", "<dev@example.org>"], mail.To);
        Assert.Contains("Subject: Ingestion: schedule 'daily' (source 'tickets') failed", mail.Data, StringComparison.Ordinal);
        Assert.Contains("503 from the API", mail.Data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Failing_notifiers_are_logged_and_never_fail_the_run()
    {
        await using var server = await TestHttpServer.StartAsync(ctx =>
        {
            ctx.Response.StatusCode = StatusCodes.Status500InternalServerError;
            return Task.CompletedTask;
        });
        var reached = new List<Notification>();
        var options = new NotificationOptions();
        options.Webhooks["broken"] = new WebhookOptions { Url = server.Url("hook").ToString() };
        options.Smtp.Host = "127.0.0.1";
        options.Smtp.Port = ClosedPort();
        options.Smtp.From = "ingestion@example.org";
        options.Smtp.To.Add("ops@example.org");
        var store = new InMemoryScheduleStore();
        using var notifier = Notifier(options, store, new FakeTimeProvider(T0), new DelegateNotifier(_ => throw new InvalidOperationException("notifier down")), new DelegateNotifier(n => reached.Add(n)));
        await FinishAsync(notifier, store, T0, ScheduleRunStatus.Failed);
        Assert.Equal(1, server.RequestCount);
        Assert.Single(reached);
    }

    [Theory]
    [InlineData("ftp://hooks.example.org/x", "Ingestion:Notifications:Webhooks:w:Url 'ftp://hooks.example.org/x' is not an absolute http(s) URL")]
    [InlineData("hooks.example.org/x", "Ingestion:Notifications:Webhooks:w:Url")]
    [InlineData("", "Ingestion:Notifications:Webhooks:w:Url is not set")]
    public void Webhook_urls_must_be_http(string url, string expected)
    {
        var options = new NotificationOptions();
        options.Webhooks["w"] = new WebhookOptions { Url = url };
        Assert.Contains(options.Validate(), e => e.StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Smtp_settings_are_checked()
    {
        var options = new NotificationOptions { RepeatedFailureThreshold = 1 };
        options.Smtp.Host = "smtp.example.org";
        options.Smtp.Port = 70000;
        options.Smtp.From = "not an address";
        var errors = options.Validate();
        Assert.Contains(errors, e => e.StartsWith("Ingestion:Notifications:Smtp:Port", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Ingestion:Notifications:Smtp:From", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Ingestion:Notifications:Smtp:To", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("Ingestion:Notifications:RepeatedFailureThreshold", StringComparison.Ordinal));
    }

    private static int ClosedPort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    private sealed class DelegateNotifier(Action<Notification> send) : INotifier
    {
        public string Name => "delegate";

        public Task SendAsync(Notification notification, CancellationToken cancellationToken)
        {
            send(notification);
            return Task.CompletedTask;
        }
    }

    private sealed class StaticMonitor<T>(T value) : IOptionsMonitor<T>
    {
        public T CurrentValue => value;

        public T Get(string? name) => value;

        public IDisposable? OnChange(Action<T, string?> listener) => null;
    }
}

/// <summary>A tiny SMTP server on 127.0.0.1 speaking just enough of RFC 5321 to accept messages.</summary>
internal sealed class SmtpListener : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Mail> _messages = [];
    private Task _loop = Task.CompletedTask;

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public IReadOnlyList<Mail> Messages
    {
        get
        {
            lock (_messages)
            {
                return _messages.ToList();
            }
        }
    }

    public static Task<SmtpListener> StartAsync()
    {
        var s = new SmtpListener();
        s._listener.Start();
        s._loop = s.AcceptAsync();
        return Task.FromResult(s);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _loop;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            using var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            await using var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.ASCII);
            await using var writer = new StreamWriter(stream, Encoding.ASCII) { NewLine = "\r\n", AutoFlush = true };
            await writer.WriteLineAsync("220 localhost test SMTP");
            string? from = null;
            var to = new List<string>();
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                var verb = line.Split(' ')[0].ToUpperInvariant();
                if (verb is "EHLO" or "HELO")
                {
                    await writer.WriteLineAsync("250 localhost");
                }
                else if (line.StartsWith("MAIL FROM:", StringComparison.OrdinalIgnoreCase))
                {
                    from = line[10..].Trim().Split(' ')[0];
                    await writer.WriteLineAsync("250 OK");
                }
                else if (line.StartsWith("RCPT TO:", StringComparison.OrdinalIgnoreCase))
                {
                    to.Add(line[8..].Trim());
                    await writer.WriteLineAsync("250 OK");
                }
                else if (verb == "DATA")
                {
                    await writer.WriteLineAsync("354 End data with <CR><LF>.<CR><LF>");
                    var data = new StringBuilder();
                    while (await reader.ReadLineAsync(_stop.Token) is { } d && d != ".")
                    {
                        data.AppendLine(d);
                    }

                    lock (_messages)
                    {
                        _messages.Add(new Mail(from ?? "", to.ToList(), data.ToString()));
                    }

                    await writer.WriteLineAsync("250 OK queued");
                }
                else if (verb == "QUIT")
                {
                    await writer.WriteLineAsync("221 Bye");
                    break;
                }
                else
                {
                    await writer.WriteLineAsync("250 OK");
                }
            }
        }
    }

    internal sealed record Mail(string From, IReadOnlyList<string> To, string Data);
}
