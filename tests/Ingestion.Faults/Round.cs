using System.Collections.Concurrent;
using System.Diagnostics;
using Npgsql;

namespace Ingestion.Faults;

/// <summary>One round: a fresh database, the host processes started on it and everything they printed.</summary>
internal sealed class Round : IAsyncDisposable
{
    private const string AppName = "ingestion-faults";
    private readonly string _admin;

    /// <summary>The hosts' backends (the sink names its connections after the source, the others keep the hosts' name).</summary>
    private const string HostBackends = "datname = current_database() AND backend_type = 'client backend' AND application_name <> 'ingestion-faults-driver' AND pid <> pg_backend_pid()";

    private Round(string admin, string database, long rows, string canary)
    {
        _admin = admin;
        Database = database;
        Rows = rows;
        Canary = canary;

        // The hosts' password is the canary: trust authentication ignores it, and no log line or job row may show it.
        HostConnection = new NpgsqlConnectionStringBuilder(admin) { Database = database, ApplicationName = AppName, Password = canary }.ConnectionString;
        Connection = new NpgsqlConnectionStringBuilder(admin) { Database = database, Pooling = false, ApplicationName = "ingestion-faults-driver" }.ConnectionString;
    }

    public string Database { get; }

    public long Rows { get; }

    /// <summary>
    /// The hosts' <c>KeyIndexMaxRows</c> when set: below <see cref="Rows"/>, a first load runs past what its key index
    /// remembers (keeps copying, marks the table, resolves repeats when the key is built).
    /// </summary>
    public int? KeyIndexMaxRows { get; set; }

    /// <summary>Whether hosts started now read every row again (a full refresh: the rows are already stored, unchanged).</summary>
    public bool FullRefresh { get; set; }

    /// <summary>The version of the source's values hosts started now read (0 first; a new version changes every value).</summary>
    public int Version { get; set; }

    public string Canary { get; }

    public string HostConnection { get; }

    /// <summary>The driver's own connection string to the round's database.</summary>
    public string Connection { get; }

    public ConcurrentQueue<string> Output { get; } = new();

    public static async Task<Round> CreateAsync(string admin, int number, long rows, string canary)
    {
        var name = $"faults_{number}";
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(admin) { Pooling = false }.ConnectionString);
        await conn.OpenAsync();
        await using (var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {name} WITH (FORCE)", conn))
        {
            await drop.ExecuteNonQueryAsync();
        }

        await using (var create = new NpgsqlCommand($"CREATE DATABASE {name}", conn))
        {
            await create.ExecuteNonQueryAsync();
        }

        return new Round(admin, name, rows, canary);
    }

    public HostProcess StartHost(string name, int keepAliveMs)
    {
        var self = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(self) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            psi.ArgumentList.Add(typeof(Round).Assembly.Location);
        }

        foreach (var a in new[] { "host", HostConnection, Rows.ToString(System.Globalization.CultureInfo.InvariantCulture), name, keepAliveMs.ToString(System.Globalization.CultureInfo.InvariantCulture) })
        {
            psi.ArgumentList.Add(a);
        }

        if (KeyIndexMaxRows is { } max)
        {
            psi.ArgumentList.Add(max.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (FullRefresh)
        {
            psi.Environment["INGESTION_FAULTS_FULL_REFRESH"] = "1";
        }

        psi.Environment["INGESTION_FAULTS_VERSION"] = Version.ToString(System.Globalization.CultureInfo.InvariantCulture);

        return new HostProcess(Process.Start(psi)!, name, Output);
    }

    /// <summary>Runs hosts without faults until one completes the source (exit 0); <see langword="false"/> when none could.</summary>
    public async Task<bool> CompleteAsync()
    {
        for (var i = 0; i < 10; i++)
        {
            var host = StartHost("host-final", keepAliveMs: 1000);
            if (await host.Exited == 0)
            {
                return true;
            }

            await Task.Delay(500);
        }

        return false;
    }

    /// <summary>Polls the hosts' backends until one matches <paramref name="condition"/>; <see langword="false"/> when <paramref name="stop"/> ended first.</summary>
    public async Task<bool> WaitForQueryAsync(string condition, Task stop)
    {
        await using var conn = new NpgsqlConnection(Connection);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand($"SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE {HostBackends} AND {condition})", conn);
        while (!stop.IsCompleted)
        {
            if ((bool)(await cmd.ExecuteScalarAsync())!)
            {
                return true;
            }

            await Task.Delay(2);
        }

        return false;
    }

    public async Task TerminateAsync(string condition) =>
        await ScalarAsync<long>($"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE {HostBackends} AND {condition}");

    public async Task TerminateLockHolderAsync() =>
        await ScalarAsync<long>("SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())");

    public async Task<T> ScalarAsync<T>(string sql)
    {
        await using var conn = new NpgsqlConnection(Connection);
        await conn.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, conn);
        var value = await cmd.ExecuteScalarAsync();
        return value is null or DBNull ? default! : (T)Convert.ChangeType(value, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    public async ValueTask DisposeAsync()
    {
        await using var conn = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(_admin) { Pooling = false }.ConnectionString);
        await conn.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {Database} WITH (FORCE)", conn);
        await drop.ExecuteNonQueryAsync();
    }
}

/// <summary>A host process and its exit code.</summary>
internal sealed class HostProcess
{
    private readonly Process _process;

    public HostProcess(Process process, string name, ConcurrentQueue<string> output)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { output.Enqueue($"{name}: {e.Data}"); } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { output.Enqueue($"{name}: {e.Data}"); } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        Exited = WaitAsync();
    }

    public Task<int> Exited { get; }

    /// <summary>SIGKILL: no cleanup, no rollback message, no job update.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited meanwhile.
        }
    }

    private async Task<int> WaitAsync()
    {
        await _process.WaitForExitAsync();
        return _process.ExitCode;
    }
}
