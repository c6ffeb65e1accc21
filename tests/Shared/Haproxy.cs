using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace AlexNet.Tests.Shared;

/// <summary>
/// Debian's HAProxy (<c>/usr/sbin/haproxy</c>, or ALEXNET_HAPROXY) in the foreground on 127.0.0.1 and a free port, in
/// front of N service replicas (127.0.0.1:port each): round robin, each replica health-checked with
/// <c>GET /health/ready</c> every <see cref="CheckIntervalMs"/> (2 failures take it out, 2 successes bring it back).
/// Retries are the safe ones only: a request whose connection to a replica failed is sent to another (it never reached
/// the first); a request answered with a closed connection and nothing else (the replica died while working on it) is
/// sent again only when it has no effect to repeat: GET/HEAD, classify, features and gallery search. A gallery add or
/// delete, a model reload and anything else is never replayed by the balancer: the replica may have committed it
/// before dying, and the client decides (it gets a 502).
/// The runtime API (a unix socket in the temp folder, <c>level admin</c>) answers <see cref="ServersAsync"/> and
/// <see cref="WaitUpAsync"/>, and moves a replica that came back on another port (<see cref="SetServerAsync"/>) or
/// drains one (<see cref="SetStateAsync"/>). Dispose kills it and deletes the folder.
/// </summary>
public sealed class Haproxy : IDisposable
{
    public const string BackendName = "replicas";
    /// <summary>Milliseconds between health checks of each replica (and after a failure, too).</summary>
    public const int CheckIntervalMs = 250;

    readonly Process _process;
    readonly TempDir _dir;
    readonly StringBuilder _log = new();

    Haproxy(Process process, TempDir dir, int port, int servers)
    {
        _process = process;
        _dir = dir;
        Address = new Uri($"http://127.0.0.1:{port}");
        ServerCount = servers;
        Client = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <summary>The balancer's address (the frontend).</summary>
    public Uri Address { get; }
    /// <summary>A client for <see cref="Address"/>.</summary>
    public HttpClient Client { get; }
    public int ServerCount { get; }
    public string ConfigPath => _dir.File("haproxy.cfg");
    string SocketPath => _dir.File("admin.sock");
    public bool HasExited => _process.HasExited;

    /// <summary>The name of replica <paramref name="index"/> in the configuration and the stats: r0, r1, ...</summary>
    public static string ServerName(int index) => $"r{index}";

    /// <summary>HAProxy's own messages (server state changes, alerts); request logs are off.</summary>
    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    public static string Binary => Environment.GetEnvironmentVariable("ALEXNET_HAPROXY") is { Length: > 0 } other ? other : "/usr/sbin/haproxy";

    /// <summary>Starts HAProxy in front of <paramref name="backends"/> (each http://127.0.0.1:port) and waits until its
    /// frontend accepts connections; it does not wait for the replicas to be UP (<see cref="WaitUpAsync"/>).</summary>
    public static async Task<Haproxy> StartAsync(IEnumerable<Uri> backends, TimeSpan? timeout = null)
    {
        if (!File.Exists(Binary))
            throw new InvalidOperationException($"{Binary} is missing: HAProxy is needed (Debian: apt-get install haproxy; ./test.sh installs it), " +
                "or set ALEXNET_HAPROXY to its path.");
        var servers = backends.ToList();
        foreach (var b in servers)
            if (!IPAddress.TryParse(b.Host, out var ip) || !IPAddress.IsLoopback(ip))
                throw new ArgumentException($"{b} is not a loopback address (127.0.0.1:port)", nameof(backends));
        for (var attempt = 1; ; attempt++)
        {
            var dir = new TempDir();
            var port = FreePort();
            File.WriteAllText(dir.File("haproxy.cfg"), Config(port, dir.File("admin.sock"), servers));
            var info = new ProcessStartInfo(Binary)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                WorkingDirectory = dir.Path,
            };
            foreach (var a in new[] { "-db", "-f", dir.File("haproxy.cfg") }) info.ArgumentList.Add(a);   // -db: foreground, no daemon
            var process = new Process { StartInfo = info };
            var haproxy = new Haproxy(process, dir, port, servers.Count);
            process.OutputDataReceived += (_, e) => haproxy.Append(e.Data);
            process.ErrorDataReceived += (_, e) => haproxy.Append(e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                await haproxy.WaitListeningAsync(timeout ?? TimeSpan.FromSeconds(20));
                return haproxy;
            }
            catch (Exception) when (attempt < 3 && process.HasExited && haproxy.Log.Contains("cannot bind", StringComparison.OrdinalIgnoreCase))
            {
                haproxy.Dispose();   // the port was taken between the probe and the bind: another one
            }
            catch
            {
                haproxy.Dispose();
                throw;
            }
        }
    }

    /// <summary>The configuration: the same choices as docker/haproxy.cfg, with fixed loopback servers instead of
    /// Docker's DNS, and faster checks (tests wait on them).</summary>
    public static string Config(int port, string adminSocket, IReadOnlyList<Uri> servers)
    {
        var s = new StringBuilder();
        s.Append(CultureInfo.InvariantCulture, $"""
            # Written by tests/Shared/Haproxy.cs (one test's balancer).
            global
                log stderr format raw local0 notice
                maxconn 1024
                stats socket {adminSocket} mode 600 level admin
                # A request body up to this size is kept for a retry (a larger one is never retried).
                tune.bufsize 262144

            defaults
                mode http
                log global
                option dontlognull
                timeout connect 1s
                timeout client 60s
                timeout server 60s
                timeout http-request 10s
                timeout http-keep-alive 10s
                timeout queue 10s
                timeout check 2s
                # Retries: a failed connection never reached a replica, so another may take it (redispatch: not the same
                # one). A closed connection with no answer is retried only for requests without effects (below).
                retries 3
                option redispatch 1
                retry-on conn-failure empty-response
                # The whole request (up to tune.bufsize) is read before a replica is chosen: a retry needs it, and a
                # slow upload holds a buffer here rather than a replica's connection.
                option http-buffer-request

            frontend api
                bind 127.0.0.1:{port}
                option forwardfor
                # HAProxy closes the client's connection after an error of its own (502 no answer, 503 no replica,
                # 504 timeout) without saying so; say so, or a client reusing the connection sees a reset instead.
                http-after-response set-header Connection close if {"{ status 502:504 }"}
                default_backend {BackendName}

            backend {BackendName}
                balance roundrobin
                option httpchk
                http-check send meth GET uri /health/ready ver HTTP/1.1 hdr Host localhost
                http-check expect status 200
                default-server check inter {CheckIntervalMs}ms fastinter {CheckIntervalMs}ms downinter {CheckIntervalMs}ms fall 2 rise 2
                # Requests that change nothing may be replayed after an empty response; anything else (gallery add and
                # delete, model reload) only after a connection failure.
                acl safe_method method GET HEAD
                acl pure_post path /api/classify /api/features /api/gallery/search
                http-request disable-l7-retry unless safe_method || pure_post

            """);
        for (var i = 0; i < servers.Count; i++)
            s.Append(CultureInfo.InvariantCulture, $"    server {ServerName(i)} 127.0.0.1:{servers[i].Port}\n");
        return s.ToString();
    }

    async Task WaitListeningAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited)
            {
                _process.WaitForExit();
                throw new InvalidOperationException($"HAProxy exited with {_process.ExitCode}: {Log}");
            }
            try
            {
                await CommandAsync("show info");
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, Address.Port);
                return;
            }
            catch (SocketException) { }   // not yet
            if (clock.Elapsed > timeout) throw new TimeoutException($"HAProxy not listening after {timeout}: {Log}");
            await Task.Delay(20);
        }
    }

    /// <summary>One runtime API command (HAProxy's management guide, "Unix Socket commands"); its answer.</summary>
    public async Task<string> CommandAsync(string command)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath));
        await socket.SendAsync(Encoding.ASCII.GetBytes(command + "\n"));
        var answer = new StringBuilder();
        var buffer = new byte[16384];
        int n;
        while ((n = await socket.ReceiveAsync(buffer)) > 0) answer.Append(Encoding.ASCII.GetString(buffer, 0, n));
        return answer.ToString();
    }

    /// <summary>Each replica's state as the balancer sees it (from <c>show stat</c>): name, address, status ("UP",
    /// "DOWN", "UP 1/2" while rising, "MAINT", "DRAIN"...) and how many requests it was sent.</summary>
    public async Task<IReadOnlyList<ServerState>> ServersAsync()
    {
        var lines = (await CommandAsync("show stat")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = lines[0].TrimStart('#', ' ').Split(',');
        int Column(string name) => Array.IndexOf(header, name) is var i and >= 0 ? i : throw new InvalidOperationException($"show stat has no {name}: {lines[0]}");
        int px = Column("pxname"), sv = Column("svname"), status = Column("status"), total = Column("stot"), addr = Column("addr");
        return lines.Skip(1).Select(l => l.Split(','))
            .Where(f => f[px] == BackendName && f[sv] is not ("BACKEND" or "FRONTEND"))
            .Select(f => new ServerState(f[sv], f[addr], f[status], long.TryParse(f[total], out var t) ? t : 0))
            .ToList();
    }

    /// <summary>Waits until exactly <paramref name="count"/> replicas are UP (every one, when null) and none is between
    /// states.</summary>
    public async Task WaitUpAsync(int? count = null, TimeSpan? timeout = null)
    {
        var want = count ?? ServerCount;
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"HAProxy exited with {_process.ExitCode}: {Log}");
            var servers = await ServersAsync();
            // Settled: no server between states ("UP 1/2" is going down, "DOWN 1/2" coming up).
            if (servers.Count(s => s.Status == "UP") == want && !servers.Any(s => s.Status.Contains('/', StringComparison.Ordinal))) return;
            if (clock.Elapsed > limit)
                throw new TimeoutException($"Not {want} replicas UP after {limit}: {string.Join(", ", servers)}\n{Log}");
            await Task.Delay(CheckIntervalMs / 2);
        }
    }

    /// <summary>Points replica <paramref name="index"/> at another address (a replica restarted on a new port). The
    /// health checks decide when it takes traffic again.</summary>
    public async Task SetServerAsync(int index, Uri address)
    {
        var answer = await CommandAsync($"set server {BackendName}/{ServerName(index)} addr 127.0.0.1 port {address.Port}");
        if (!answer.Contains("changed", StringComparison.OrdinalIgnoreCase) && !answer.Contains("no need to change", StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"HAProxy refused the new address of {ServerName(index)}: {answer}");
    }

    /// <summary>"ready", "drain" (no new requests, open ones finish) or "maint" (out) for replica <paramref name="index"/>.</summary>
    public async Task SetStateAsync(int index, string state)
    {
        var answer = await CommandAsync($"set server {BackendName}/{ServerName(index)} state {state}");
        if (answer.Trim().Length > 0) throw new InvalidOperationException($"HAProxy refused state {state} for {ServerName(index)}: {answer}");
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

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }   // never started
        Client.Dispose();
        _process.Dispose();
        _dir.Dispose();
    }
}

/// <summary>One replica in HAProxy's <c>show stat</c>.</summary>
public sealed record ServerState(string Name, string Address, string Status, long Requests);
