using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AlexNet.Tests.Shared;

/// <summary>
/// A real PostgreSQL 15 server of its own (Debian's postgresql-15, <c>/usr/lib/postgresql/15/bin</c>, or the folder in
/// ALEXNET_PG_BIN): a fresh cluster in a temporary folder, listening on 127.0.0.1 and a free port only (its unix socket
/// sits in that folder, so it never meets a system cluster), with one database, <see cref="Database"/>.
/// Durability is the real thing: <c>fsync=on</c>, <c>synchronous_commit=on</c>, <c>full_page_writes=on</c> (only
/// initdb's own final sync is skipped: a cluster made for one test never outlives an OS crash).
/// PostgreSQL refuses to run as root, so under root (CI) every server program runs as the unprivileged user
/// <c>postgres</c> (setpriv, which execs: the process we hold is the postmaster itself); otherwise as the current user.
/// <see cref="Stop"/> is a fast shutdown and <see cref="Kill"/> a SIGKILL of the postmaster and all its backends
/// (a crash: the next <see cref="Start"/> replays the WAL); both keep the data folder and the port, so
/// <see cref="Start"/> brings the same cluster back at the same <see cref="ConnectionString"/>. Dispose kills it and
/// deletes the folder.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    public const string DefaultBin = "/usr/lib/postgresql/15/bin";
    const string OsUser = "postgres";
    const string SuperUser = "postgres";

    readonly string _bin;
    readonly bool _asPostgresUser;
    readonly StringBuilder _log = new();
    Process? _postmaster;

    PostgresServer(string bin, string folder, int port, string database, bool asPostgresUser)
    {
        _bin = bin;
        Folder = folder;
        Port = port;
        Database = database;
        _asPostgresUser = asPostgresUser;
    }

    /// <summary>The temporary folder: <c>data/</c> (the cluster) and the unix socket.</summary>
    public string Folder { get; }
    public string DataDirectory => Path.Combine(Folder, "data");
    public string Host => "127.0.0.1";
    public int Port { get; }
    public string Database { get; }
    public string UserName => SuperUser;

    /// <summary>Npgsql syntax, TCP on loopback, trust authentication (nothing but this machine can reach the port).
    /// Timeout is short so a test that stopped the server sees the failure quickly.</summary>
    public string ConnectionString => $"Host={Host};Port={Port};Database={Database};Username={UserName};Timeout=5;Command Timeout=30";

    /// <summary>The same for another database of this cluster (see <see cref="CreateDatabase"/>).</summary>
    public string ConnectionStringFor(string database) => ConnectionString.Replace($"Database={Database};", $"Database={database};");

    /// <summary>Whether the postmaster runs (started and not stopped, killed or crashed).</summary>
    public bool IsRunning => _postmaster is { HasExited: false };

    /// <summary>The postmaster's process id while it runs.</summary>
    public int? ProcessId => IsRunning ? _postmaster!.Id : null;

    /// <summary>The end of the server's log (stderr: startup, recovery, errors), for failure messages.</summary>
    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    /// <summary>Makes a cluster in a new temporary folder, starts it and creates <paramref name="database"/>.
    /// Throws with what to install when the PostgreSQL programs are missing.</summary>
    public static PostgresServer Start(string database = "gallery", TimeSpan? timeout = null)
    {
        var bin = Environment.GetEnvironmentVariable("ALEXNET_PG_BIN") is { Length: > 0 } other ? other : DefaultBin;
        foreach (var program in new[] { "initdb", "postgres", "pg_ctl", "pg_isready", "psql" })
            if (!File.Exists(Path.Combine(bin, program)))
                throw new InvalidOperationException($"{Path.Combine(bin, program)} is missing: PostgreSQL 15's server programs are needed " +
                    "(Debian: apt-get install postgresql-15; ./test.sh installs it), or set ALEXNET_PG_BIN to the folder that holds initdb and postgres.");
        var asPostgresUser = Environment.IsPrivilegedProcess;
        if (asPostgresUser && Run("id", ["-u", OsUser], check: false).Code != 0)
            throw new InvalidOperationException($"Running as root, and there is no user '{OsUser}' to run PostgreSQL as (it refuses root); " +
                "Debian's postgresql-15 package creates it.");

        // A folder every user can reach (postgres must traverse its parents): under /tmp when root.
        var parent = asPostgresUser ? "/tmp" : Path.GetTempPath();
        var folder = Path.Combine(parent, "alexnet-pg-" + Guid.NewGuid().ToString("N")[..12]);
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("PostgresServer runs Debian's PostgreSQL: Linux only.");
        Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        PostgresServer? server = null;
        try
        {
            if (asPostgresUser) Run("chown", [$"{OsUser}:{OsUser}", folder]);
            server = new PostgresServer(bin, folder, FreePort(), database, asPostgresUser);
            server.InitDb();
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    server.Start(timeout);
                    break;
                }
                catch (Exception) when (attempt < 3 && !server.IsRunning)
                {
                    // Most likely the port was taken between the probe and the bind: another port.
                    server = server.WithPort(FreePort());
                }
            }
            if (database != "postgres") server.CreateDatabase(database);
            return server;
        }
        catch
        {
            if (server is not null) server.Dispose();
            else DeleteFolder(folder);
            throw;
        }
    }

    PostgresServer WithPort(int port)
    {
        var next = new PostgresServer(_bin, Folder, port, Database, _asPostgresUser);
        next.WriteSettings();
        return next;
    }

    void InitDb()
    {
        var (code, output) = Run(ServerCommand("initdb"), ["-D", DataDirectory, "-U", SuperUser, "--auth=trust", "--encoding=UTF8",
            "--locale=C", "--no-sync", "--no-instructions"], check: false);
        if (code != 0) throw new InvalidOperationException($"initdb -D {DataDirectory} failed ({code}): {output}");
        WriteSettings();
    }

    /// <summary>The settings go into postgresql.auto.conf (read last, so they win), once: a restart reads the same ones.</summary>
    void WriteSettings()
    {
        var settings = new Dictionary<string, string>
        {
            ["listen_addresses"] = "'127.0.0.1'",
            ["port"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["unix_socket_directories"] = $"'{Folder}'",
            ["fsync"] = "on",
            ["synchronous_commit"] = "on",
            ["full_page_writes"] = "on",
            ["max_connections"] = "200",          // three replicas' pools (Npgsql: 100 each at most) rarely all open at once
            ["shared_buffers"] = "32MB",
            ["logging_collector"] = "off",        // the log is the postmaster's stderr, which we read
            ["log_min_messages"] = "warning",
            ["log_connections"] = "off",
            ["log_checkpoints"] = "off",
        };
        var path = Path.Combine(DataDirectory, "postgresql.auto.conf");
        File.WriteAllText(path, "# Written by tests/Shared/PostgresServer.cs\n" + string.Concat(settings.Select(s => $"{s.Key} = {s.Value}\n")));
        if (_asPostgresUser) Run("chown", [$"{OsUser}:{OsUser}", path]);
    }

    /// <summary>Starts the postmaster on the existing cluster and waits until it accepts connections (after a
    /// <see cref="Kill"/>, that includes crash recovery).</summary>
    public void Start(TimeSpan? timeout = null)
    {
        if (IsRunning) throw new InvalidOperationException("PostgreSQL is already running.");
        _postmaster?.Dispose();
        var (file, prefix) = ServerCommand("postgres");
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = Folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in prefix.Concat(["-D", DataDirectory])) info.ArgumentList.Add(a);
        info.Environment["LC_ALL"] = "C";
        var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _postmaster = process;

        var limit = timeout ?? TimeSpan.FromSeconds(60);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                process.WaitForExit();
                throw new InvalidOperationException($"PostgreSQL exited with {process.ExitCode} while starting on port {Port}: {Log}");
            }
            // pg_isready: 0 accepting, 1 rejecting (starting up or recovering), 2 no answer.
            if (Run(Path.Combine(_bin, "pg_isready"), ["-q", "-h", Host, "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "-U", SuperUser, "-d", "postgres", "-t", "2"], check: false).Code == 0)
                return;
            if (clock.Elapsed > limit)
            {
                KillProcessTree();
                throw new TimeoutException($"PostgreSQL did not accept connections on port {Port} within {limit}: {Log}");
            }
            Thread.Sleep(50);
        }
    }

    /// <summary>Fast shutdown (pg_ctl stop -m fast: open transactions roll back, clients are disconnected, a
    /// checkpoint is written); waits until the postmaster has gone.</summary>
    public void Stop(TimeSpan? timeout = null)
    {
        if (!IsRunning) return;
        var seconds = (int)(timeout ?? TimeSpan.FromSeconds(60)).TotalSeconds;
        var (code, output) = Run(ServerCommand("pg_ctl"), ["stop", "-D", DataDirectory, "-m", "fast", "-w", "-t", seconds.ToString(System.Globalization.CultureInfo.InvariantCulture)], check: false);
        if (!_postmaster!.WaitForExit(TimeSpan.FromSeconds(seconds)))
            throw new TimeoutException($"pg_ctl stop ({code}: {output.Trim()}) and PostgreSQL still runs: {Log}");
        _postmaster.WaitForExit();
    }

    /// <summary>SIGKILL to the postmaster and every backend (what an OOM kill of the whole server does). Nothing is
    /// shut down cleanly; committed transactions survive in the WAL, and the next <see cref="Start"/> recovers.</summary>
    public void Kill()
    {
        if (!IsRunning) return;
        KillProcessTree();
    }

    void KillProcessTree()
    {
        if (_postmaster is null || _postmaster.HasExited) return;
        // Backends notice a dead postmaster only later; a new postmaster refuses to start while old ones still hold
        // the shared memory, so they go too, and we wait for them.
        var children = ChildrenOf(_postmaster.Id);
        try { _postmaster.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _postmaster.WaitForExit(10_000);
        foreach (var pid in children)
        {
            try
            {
                using var child = Process.GetProcessById(pid);
                child.Kill();
                child.WaitForExit(10_000);
            }
            catch (ArgumentException) { }            // already gone
            catch (InvalidOperationException) { }
        }
    }

    static List<int> ChildrenOf(int parent)
    {
        var children = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');   // after "pid (comm) ": state ppid ...
                if (int.Parse(fields[1], System.Globalization.CultureInfo.InvariantCulture) == parent) children.Add(pid);
            }
            catch (IOException) { }                  // gone while we looked
        }
        return children;
    }

    /// <summary>Creates another database in this cluster (for a test that wants two galleries).</summary>
    public void CreateDatabase(string name) => Sql($"CREATE DATABASE \"{name.Replace("\"", "\"\"")}\"", "postgres");

    /// <summary>Runs SQL with psql (as the superuser, over TCP) and returns its output: rows one a line, columns split
    /// by '|', no header (psql -At). Throws with psql's message when the statement fails. For tests to look at the
    /// tables directly (the rows a replica should hold) without a driver.</summary>
    public string Sql(string sql, string? database = null)
    {
        var (code, output) = Run(Path.Combine(_bin, "psql"), ["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", Host, "-p",
            Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", SuperUser, "-d", database ?? Database, "-c", sql], check: false);
        if (code != 0) throw new InvalidOperationException($"psql failed ({code}) on: {sql}\n{output}");
        return output.TrimEnd('\n');
    }

    void Append(string? line)
    {
        if (line is null) return;
        lock (_log)
        {
            _log.AppendLine(line);
            if (_log.Length > 20_000) _log.Remove(0, _log.Length - 10_000);
        }
    }

    /// <summary>A server program as the user that may run it: (file, leading arguments).</summary>
    (string File, string[] Prefix) ServerCommand(string program)
    {
        var path = Path.Combine(_bin, program);
        return _asPostgresUser ? ("setpriv", ["--reuid", OsUser, "--regid", OsUser, "--init-groups", "--", path]) : (path, []);
    }

    (int Code, string Output) Run((string File, string[] Prefix) command, string[] args, bool check = true) =>
        Run(command.File, [.. command.Prefix, .. args], check);

    static (int Code, string Output) Run(string file, string[] args, bool check = true)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",                  // postgres can't read root's home
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["LC_ALL"] = "C";
        info.Environment["PGCONNECT_TIMEOUT"] = "5";
        using var p = Process.Start(info)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var output = stdout + stderr.Result;
        if (check && p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {output}");
        return (p.ExitCode, output);
    }

    /// <summary>A port nothing listens on now (the OS's choice); the caller retries if it was taken before the bind.</summary>
    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    static void DeleteFolder(string folder)
    {
        try { Directory.Delete(folder, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public void Dispose()
    {
        KillProcessTree();
        _postmaster?.Dispose();
        DeleteFolder(Folder);
    }
}
