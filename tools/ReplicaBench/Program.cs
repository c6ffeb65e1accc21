using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using AlexNet.Tests.Shared;

// Several replicas behind HAProxy sharing one gallery (docs/benchmarks.md, "Several replicas"). Starts everything
// itself on 127.0.0.1: a PostgreSQL 15 of its own (tests/Shared/PostgresServer.cs), three service processes and
// Debian's HAProxy (tests/Shared/Haproxy.cs), then measures
//   1. classify throughput straight to one replica, and through HAProxy with 1, 2 and 3 replicas in rotation (the
//      others in maintenance): on a machine with few cores this shows the balancer's overhead, not scaling;
//   2. gallery write throughput through HAProxy (every replica writing to the shared store);
//   3. convergence delay: an add acknowledged by replica A (its X-Gallery-Sequence), then GET /api/gallery/{id} on
//      each other replica every millisecond until it answers 200 (the replica's in-memory gallery has it): p50, p99 and
//      max, idle and under a write load through HAProxy.
// --store Sqlite runs the same against one SQLite gallery per replica (the default store; item 3 then shows that
// replicas never converge, by timing out).
var options = Options.Parse(args);
Console.WriteLine($"{DateTime.UtcNow:u}  store {options.Store}  {options.Workers} workers  {options.Seconds} s a phase  " +
    $"{Environment.ProcessorCount} cores  load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");

using var pg = options.Store == "Postgres" ? PostgresServer.Start() : null;
var replicas = new List<Replica>();
try
{
    for (var i = 0; i < 3; i++) replicas.Add(await Replica.StartAsync(options, pg, i));
    using var lb = await Haproxy.StartAsync(replicas.Select(r => r.Url));
    await lb.WaitUpAsync(3, TimeSpan.FromSeconds(60));
    var images = Enumerable.Range(0, 256).Select(i => Png.Noise(i, options.ImageSide)).ToArray();
    var rows = new List<string>();

    // 1. Classify.
    using var direct = Client(replicas[0].Url);
    await Load.ClosedAsync("warm-up", direct, 2, options.Seconds / 2, (c, n) => Classify(c, images[n % images.Length]));
    var single = await Load.ClosedAsync("classify, replica 0 directly", direct, options.Workers, options.Seconds,
        (c, n) => Classify(c, images[n % images.Length]));
    rows.Add(single.Row(single.Throughput));
    foreach (var active in new[] { 1, 2, 3 })
    {
        for (var i = 0; i < 3; i++) await lb.SetStateAsync(i, i < active ? "ready" : "maint");
        await lb.WaitUpAsync(active, TimeSpan.FromSeconds(60));
        using var through = Client(lb.Address);
        var phase = await Load.ClosedAsync($"classify, HAProxy, {active} replica{(active > 1 ? "s" : "")}", through, options.Workers, options.Seconds,
            (c, n) => Classify(c, images[n % images.Length]));
        rows.Add(phase.Row(single.Throughput));
    }

    // 2. Writes through the balancer, all three replicas taking them.
    var seed = 1000;
    using (var through = Client(lb.Address))
    {
        var writes = await Load.ClosedAsync("gallery add, HAProxy, 3 replicas", through, options.Workers, options.Seconds,
            (c, _) => Add(c, Png.Noise(Interlocked.Increment(ref seed), options.ImageSide), options.Key));
        rows.Add(writes.Row(null));
    }

    // 3. Convergence: idle, then under a write load through the balancer.
    var convergence = new List<string>();
    convergence.Add(await ConvergeAsync("idle") + " | none |");
    using (var through = Client(lb.Address))
    using (var stop = new CancellationTokenSource())
    {
        var background = Load.ClosedAsync("background adds (during convergence)", through, Math.Max(1, options.Workers / 2), double.MaxValue,
            (c, _) => Add(c, Png.Noise(Interlocked.Increment(ref seed), options.ImageSide), options.Key), stop.Token);
        convergence.Add(await ConvergeAsync($"under {Math.Max(1, options.Workers / 2)} writers through HAProxy"));
        await stop.CancelAsync();
        var load = await background;
        convergence[^1] += $" | {load.Throughput:F1} adds/s, failed {load.FailedText} |";
    }

    Console.WriteLine();
    Console.WriteLine($"| phase | req/s | vs one replica directly | p50 ms | p99 ms | failed |");
    Console.WriteLine($"|---|---|---|---|---|---|");
    foreach (var r in rows) Console.WriteLine(r);
    Console.WriteLine();
    Console.WriteLine("| convergence (add on A, GET by id on B) | samples | p50 ms | p99 ms | max ms | not seen in 5 s | load |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    foreach (var c in convergence) Console.WriteLine(c);
    var counts = await Task.WhenAll(replicas.Select(r => r.CountAsync()));
    Console.WriteLine($"gallery size per replica at the end: {string.Join(", ", counts)}" + (pg is null ? "" : $"; rows in PostgreSQL: {TryCount(pg)}"));
    return 0;
}
finally
{
    foreach (var r in replicas) r.Dispose();
}

async Task<string> ConvergeAsync(string name)
{
    var delays = new List<double>();
    var missed = 0;
    using var clients = new DisposableList<HttpClient>(replicas.Select(r => Client(r.Url)));
    for (var n = 0; n < options.Samples && missed < 3; n++)
    {
        var a = n % replicas.Count;
        var label = $"converge-{(name == "idle" ? "idle" : "load")}-{n}";
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/api/gallery?label={label}")
            { Content = Content(Png.Noise(500_000 + n + (name == "idle" ? 0 : 100_000), options.ImageSide)) };
        request.Headers.Add("X-Api-Key", options.Key);
        using var added = await clients[a].SendAsync(request);
        if (added.StatusCode != HttpStatusCode.Created) throw new InvalidOperationException($"add on replica {a}: {(int)added.StatusCode} {await added.Content.ReadAsStringAsync()}");
        var acked = Stopwatch.GetTimestamp();
        using var body = JsonDocument.Parse(await added.Content.ReadAsStringAsync());
        var id = body.RootElement.GetProperty("items")[0].GetProperty("id").GetInt64();
        var waits = Enumerable.Range(0, replicas.Count).Where(b => b != a).Select(async b =>
        {
            while (Stopwatch.GetElapsedTime(acked).TotalSeconds < 5)
            {
                using var got = await clients[b].GetAsync($"/api/gallery/{id}");
                // The same id with another label is another image (SQLite: each replica numbers its own gallery).
                if (got.StatusCode == HttpStatusCode.OK && (await got.Content.ReadAsStringAsync()).Contains($"\"{label}\"", StringComparison.Ordinal))
                    return Stopwatch.GetElapsedTime(acked).TotalMilliseconds;
                else if (got.StatusCode != HttpStatusCode.NotFound && got.StatusCode != HttpStatusCode.OK) throw new InvalidOperationException($"GET {id} on replica {b}: {(int)got.StatusCode}");
                await Task.Delay(1);
            }
            return double.NaN;
        });
        foreach (var d in await Task.WhenAll(waits))
            if (double.IsNaN(d)) missed++;
            else delays.Add(d);
    }
    var sorted = delays.Order().ToArray();
    double P(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
    var row = $"| {name} | {sorted.Length} | {P(0.5):F1} | {P(0.99):F1} | {(sorted.Length > 0 ? sorted[^1] : double.NaN):F1} | {missed}";
    Console.WriteLine(row);
    return row;
}

static string TryCount(PostgresServer pg)
{
    try { return pg.Sql("SELECT count(*) FROM gallery_images WHERE deleted_seq IS NULL"); }
    catch (InvalidOperationException) { return "? (no gallery_images table)"; }
}

static HttpClient Client(Uri url) => new(new SocketsHttpHandler { MaxConnectionsPerServer = 1024, UseCookies = false })
    { BaseAddress = url, Timeout = TimeSpan.FromSeconds(60) };

static ByteArrayContent Content(byte[] png)
{
    var content = new ByteArrayContent(png);
    content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
    return content;
}

static async Task<HttpStatusCode> Classify(HttpClient client, byte[] png)
{
    using var response = await client.PostAsync("/api/classify", Content(png));
    await response.Content.ReadAsByteArrayAsync();
    return response.StatusCode == HttpStatusCode.OK ? HttpStatusCode.OK : response.StatusCode;
}

static async Task<HttpStatusCode> Add(HttpClient client, byte[] png, string key)
{
    using var request = new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Content(png) };
    request.Headers.Add("X-Api-Key", key);
    using var response = await client.SendAsync(request);
    await response.Content.ReadAsByteArrayAsync();
    return response.StatusCode == HttpStatusCode.Created ? HttpStatusCode.OK : response.StatusCode;
}

sealed record Options(string Api, string Model, string Store, int Workers, double Seconds, int Samples, int ImageSide, IReadOnlyList<string> Settings)
{
    public string Key { get; } = "bench-" + Guid.NewGuid().ToString("N")[..12];

    public static Options Parse(string[] args)
    {
        string? Get(string name, string? fallback = null)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        double D(string name, string fallback) => double.Parse(Get(name, fallback)!, CultureInfo.InvariantCulture);
        var api = Get("--api") ?? throw new ArgumentException("--api DLL (src/Api's AlexNet.Api.dll) is required.");
        var model = Get("--model") ?? throw new ArgumentException("--model ONNX is required.");
        var store = Get("--store", "Postgres")!;
        if (store is not ("Postgres" or "Sqlite")) throw new ArgumentException($"--store {store}: Postgres or Sqlite.");
        var settings = args.Select((a, i) => (a, i)).Where(p => p.a == "--set" && p.i + 1 < args.Length).Select(p => args[p.i + 1]).ToList();
        return new Options(Path.GetFullPath(api), Path.GetFullPath(model), store, (int)D("--workers", "8"), D("--seconds", "10"),
            (int)D("--samples", "200"), (int)D("--image-side", "96"), settings);
    }
}

/// <summary>One service process of this run, configured by environment variables on 127.0.0.1 and a free port.</summary>
sealed class Replica : IDisposable
{
    readonly Process _process;
    readonly TempDir _dir;

    Replica(Process process, Uri url, TempDir dir) => (_process, Url, _dir) = (process, url, dir);

    public Uri Url { get; }

    public static async Task<Replica> StartAsync(Options options, PostgresServer? pg, int index)
    {
        var dir = new TempDir();
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = Path.GetDirectoryName(options.Api)!, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(options.Api);
        var env = new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
            ["Inference__ModelPath"] = options.Model,
            ["Inference__Provider"] = "Cpu",
            ["Grpc__Url"] = "",   // three replicas on one host: gRPC off (its default port would clash)
            ["Cache__Enabled"] = "false",                   // every classify decodes and runs
            ["RateLimit__PermitLimit"] = "1000000",         // one client (or HAProxy) would meet the per-client limits
            ["Uploads__MaxUploadsPerClient"] = "100000",
            ["Server__MaxConnectionsPerClient"] = "100000",
            ["Security__ApiKey"] = options.Key,
            ["Gallery__DatabasePath"] = dir.File("gallery.db"),
            ["Logging__LogLevel__Default"] = "Warning",
        };
        if (pg is not null)
        {
            env["Gallery__Store"] = "Postgres";
            env["ConnectionStrings__Gallery"] = pg.ConnectionString;
        }
        foreach (var s in options.Settings) env[s[..s.IndexOf('=')].Replace(":", "__")] = s[(s.IndexOf('=') + 1)..];
        foreach (var (k, v) in env) info.Environment[k] = v;
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"[replica {index}] {e.Data}"); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var replica = new Replica(process, new Uri($"http://127.0.0.1:{port}"), dir);
        using var probe = new HttpClient { BaseAddress = replica.Url };
        for (var watch = Stopwatch.StartNew(); ; await Task.Delay(100))
        {
            if (process.HasExited) throw new InvalidOperationException($"Replica {index} exited with {process.ExitCode}.");
            try
            {
                if ((await probe.GetAsync("/health/ready")).IsSuccessStatusCode) break;
            }
            catch (HttpRequestException) { }
            if (watch.Elapsed > TimeSpan.FromSeconds(120)) throw new TimeoutException($"Replica {index} was not ready after 120 s.");
        }
        Console.WriteLine($"replica {index}: process {process.Id} on {replica.Url}");
        return replica;
    }

    public async Task<int> CountAsync()
    {
        using var client = new HttpClient { BaseAddress = Url };
        using var page = JsonDocument.Parse(await client.GetStringAsync("/api/gallery?limit=1"));
        return page.RootElement.GetProperty("total").GetInt32();
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit(10_000);
        _process.Dispose();
        _dir.Dispose();
    }
}

sealed class DisposableList<T>(IEnumerable<T> items) : List<T>(items), IDisposable where T : IDisposable
{
    public void Dispose()
    {
        foreach (var item in this) item.Dispose();
    }
}

/// <summary>One phase's answers: 200 (or 201 for adds) counted with their latency, anything else by status.</summary>
sealed class Load(string name)
{
    readonly ConcurrentBag<double> _latencies = [];
    readonly ConcurrentDictionary<string, int> _failed = new();
    int _ok;

    public string Name { get; } = name;
    public double Seconds { get; private set; }
    public double Throughput => _ok / Seconds;

    /// <summary><paramref name="workers"/> loops, each sending its next request when the last is answered.</summary>
    public static async Task<Load> ClosedAsync(string name, HttpClient client, int workers, double seconds,
        Func<HttpClient, int, Task<HttpStatusCode>> send, CancellationToken stop = default)
    {
        var load = new Load(name);
        var next = 0;
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(async _ =>
        {
            while (watch.Elapsed.TotalSeconds < seconds && !stop.IsCancellationRequested)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    var status = await send(client, Interlocked.Increment(ref next));
                    if (status == HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref load._ok);
                        load._latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    }
                    else load._failed.AddOrUpdate(((int)status).ToString(CultureInfo.InvariantCulture), 1, (_, c) => c + 1);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    load._failed.AddOrUpdate(e.GetType().Name, 1, (_, c) => c + 1);
                }
            }
        }));
        load.Seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine($"{name,-40} {load.Throughput,8:F1}/s  p50 {load.P(0.5),6:F0} ms  p99 {load.P(0.99),6:F0} ms  failed {load.FailedText}");
        return load;
    }

    double P(double q)
    {
        var sorted = _latencies.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
    }

    public string FailedText => _failed.IsEmpty ? "0" : string.Join(", ", _failed.Select(f => $"{f.Key} x{f.Value}"));

    public string Row(double? baseline) =>
        $"| {Name} | {Throughput:F1} | {(baseline is { } b ? $"{Throughput / b:F2}x" : "")} | {P(0.5):F0} | {P(0.99):F0} | {FailedText} |";
}
