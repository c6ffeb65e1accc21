using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;

// Overload and soak against a running service on 127.0.0.1 (docs/benchmarks.md, "Overload and soak"):
//   warm-up, capacity (closed loop), open loops at 1x, 2x and 4x capacity, a soak at 2x, recovery.
// Passes when every answer is 200 or a 503 with Retry-After (the documented overload answer), no request fails in
// transport, recovery is all 200, and the service's working set at the end of the soak is within --rss-growth of
// its first sample in the soak (memory flat under sustained overload). Start the service with Cache:Enabled=false (every request decodes and runs) and a rate
// limit it will not reach.
var options = Options.Parse(args);
using var own = options.Api is null ? null : await OwnService.StartAsync(options.Api, options.Model!, options.Settings);
if (own is not null) options = options with { Url = own.Url };
if (!options.Url.IsLoopback) return Fail($"{options.Url} is not a loopback address; this tool only loads 127.0.0.1.");
var images = Enumerable.Range(0, 256).Select(i => Png.Noise(i, options.ImageSide)).ToArray();
using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 4096, UseCookies = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) })
{
    BaseAddress = options.Url,
    Timeout = TimeSpan.FromSeconds(120),
};
var run = new Runner(client, images);

Console.WriteLine($"{DateTime.UtcNow:u}  {options.Url}  images {options.ImageSide}x{options.ImageSide} PNG ({images.Average(i => i.Length) / 1024:F1} KB)  " +
    $"load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]}");
var service0 = await Service.SampleAsync(client);
Console.WriteLine($"service before: {service0}");
var phases = new List<Phase>();
phases.Add(await run.ClosedAsync("warm-up (closed, 2 workers)", 2, options.Seconds / 2));
var capacity = await run.ClosedAsync($"capacity (closed, {options.Workers} workers)", options.Workers, options.Seconds);
phases.Add(capacity);
var rate = capacity.Throughput;
var baseline = await Service.SampleAsync(client);
foreach (var x in new[] { 1.0, 2.0, 4.0 }) phases.Add(await run.OpenAsync($"open loop {x:0}x ({x * rate:F0}/s)", x * rate, options.Seconds));
var soakStart = await Service.SampleAsync(client);
var soak = await run.OpenAsync($"soak 2x ({2 * rate:F0}/s, {options.SoakSeconds:F0} s)", 2 * rate, options.SoakSeconds, sampleEvery: 5);
phases.Add(soak);
var soakEnd = await Service.SampleAsync(client);
phases.Add(await run.ClosedAsync("recovery (closed, 1 worker)", 1, Math.Min(5, options.Seconds)));
var after = await Service.SampleAsync(client);

Console.WriteLine();
Console.WriteLine($"{"phase",-34} {"sent",6} {"200",6} {"503",6} {"other",5} {"xport",5} {"ok/s",7} {"p50 ms",7} {"p99 ms",7} {"max ms",8}  503 w/o Retry-After");
foreach (var p in phases) Console.WriteLine(p);
Console.WriteLine();
Console.WriteLine($"service after warm-up+capacity: {baseline}");
Console.WriteLine($"service at soak start:          {soakStart}");
foreach (var (t, s) in soak.Samples) Console.WriteLine($"  soak +{t,4:F0} s: {s}");
Console.WriteLine($"service at soak end:            {soakEnd}");
Console.WriteLine($"service after recovery:         {after}");

var problems = new List<string>();
foreach (var p in phases)
{
    if (p.Other.Count > 0) problems.Add($"{p.Name}: answers other than 200/503: {string.Join(", ", p.Other.Select(o => $"{o.Key} x{o.Value}"))}");
    if (p.Transport > 0) problems.Add($"{p.Name}: {p.Transport} transport failures ({p.FirstTransportError})");
    if (p.NoRetryAfter > 0) problems.Add($"{p.Name}: {p.NoRetryAfter} 503s without Retry-After");
}
if (phases[^1].Ok != phases[^1].Sent) problems.Add("recovery: not every request got 200");
// Flat: the soak's first sample (after its own first seconds at 2x: the overload's working set, larger than the idle
// one by the requests in flight) against its end. Growth between them would be a leak per request.
var soakFirst = soak.Samples.Count > 0 ? soak.Samples.MinBy(s => s.Item1).Item2 : soakStart;
var growth = (double)(soakEnd.WorkingSet - soakFirst.WorkingSet) / soakFirst.WorkingSet;
var peak = soak.Samples.Select(s => s.Item2.WorkingSet).Append(soakEnd.WorkingSet).Max();
Console.WriteLine($"working set: idle after warm-up {baseline.WorkingSet / 1048576.0:F0} MiB, soak first sample {soakFirst.WorkingSet / 1048576.0:F0} MiB, " +
    $"soak peak {peak / 1048576.0:F0} MiB, soak end {soakEnd.WorkingSet / 1048576.0:F0} MiB: {growth:+0.0%;-0.0%} over the soak (limit +{options.RssGrowth:0%})");
if (growth > options.RssGrowth) problems.Add($"working set grew {growth:P0} over the soak");
if (own is not null) Console.WriteLine($"service process {own.Pid}: {own.Memory()}");
Console.WriteLine(problems.Count == 0 ? "PASS" : "FAIL\n  " + string.Join("\n  ", problems));
return problems.Count == 0 ? 0 : 1;

static int Fail(string message)
{
    Console.Error.WriteLine(message);
    return 2;
}

/// <summary>--api DLL --model ONNX: start the service here (its own process, a free port, cache off, a temporary
/// gallery; --set Key=Value adds settings), load it, stop it. Or --url: load a service already running.</summary>
sealed record Options(Uri Url, string? Api, string? Model, IReadOnlyList<string> Settings, int Workers, double Seconds, double SoakSeconds,
    int ImageSide, double RssGrowth)
{
    public static Options Parse(string[] args)
    {
        string? Get(string name, string? fallback = null)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        double D(string name, string fallback) => double.Parse(Get(name, fallback)!, CultureInfo.InvariantCulture);
        var settings = args.Select((a, i) => (a, i)).Where(p => p.a == "--set" && p.i + 1 < args.Length).Select(p => args[p.i + 1]).ToList();
        var api = Get("--api");
        if (api is not null && Get("--model") is null) throw new ArgumentException("--api needs --model.");
        if (api is null && Get("--url") is null) throw new ArgumentException("Give --api DLL --model ONNX, or --url of a running service.");
        return new Options(new Uri(Get("--url", "http://127.0.0.1:1")!), api, Get("--model"), settings, (int)D("--workers", "2"), D("--seconds", "15"),
            D("--soak-seconds", "60"), (int)D("--image-side", "96"), D("--rss-growth", "0.10"));
    }
}

/// <summary>The service started by this tool, so the load cannot land on someone else's service on a shared port.</summary>
sealed class OwnService : IDisposable
{
    readonly Process _process;
    readonly string _folder;

    OwnService(Process process, Uri url, string folder) => (_process, Url, _folder) = (process, url, folder);

    public Uri Url { get; }
    public int Pid => _process.Id;

    public static async Task<OwnService> StartAsync(string dll, string model, IReadOnlyList<string> settings)
    {
        var port = FreePort();
        var folder = Directory.CreateTempSubdirectory("alexnet-loadtest-").FullName;
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = Path.GetDirectoryName(Path.GetFullPath(dll))!, RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.GetFullPath(dll));
        var env = new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
            ["Inference__ModelPath"] = Path.GetFullPath(model),
            ["Inference__Provider"] = "Cpu",
            ["Cache__Enabled"] = "false",                   // every request decodes and runs
            ["RateLimit__PermitLimit"] = "1000000",         // one client: the per-client limits would answer 429s
            ["Uploads__MaxUploadsPerClient"] = "100000",
            ["Server__MaxConnectionsPerClient"] = "100000",
            ["Gallery__DatabasePath"] = Path.Combine(folder, "gallery.db"),
            ["Logging__LogLevel__Default"] = "Warning",
        };
        foreach (var s in settings)
        {
            var (k, v) = (s[..s.IndexOf('=')], s[(s.IndexOf('=') + 1)..]);
            env[k.Replace(":", "__")] = v;
        }
        foreach (var (k, v) in env) info.Environment[k] = v;
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"[service] {e.Data}"); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var service = new OwnService(process, new Uri($"http://127.0.0.1:{port}"), folder);
        using var probe = new HttpClient { BaseAddress = service.Url };
        for (var watch = Stopwatch.StartNew(); ; await Task.Delay(100))
        {
            if (process.HasExited) throw new InvalidOperationException($"The service exited with {process.ExitCode}.");
            try
            {
                if ((await probe.GetAsync("/health/ready")).IsSuccessStatusCode) break;
            }
            catch (HttpRequestException) { }
            if (watch.Elapsed > TimeSpan.FromSeconds(120)) throw new TimeoutException("The service was not ready after 120 s.");
        }
        Console.WriteLine($"started service process {process.Id} on {service.Url} with {string.Join(", ", settings.DefaultIfEmpty("defaults"))}");
        return service;
    }

    public string Memory()
    {
        var status = File.ReadAllLines($"/proc/{Pid}/status");
        string Field(string name) => status.FirstOrDefault(l => l.StartsWith(name + ":", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "?";
        return $"VmRSS {Field("VmRSS")}, peak VmHWM {Field("VmHWM")}, threads {Field("Threads")}";
    }

    static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit(10_000);
        _process.Dispose();
        try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
    }
}

/// <summary>The service's own numbers, from /metrics (prometheus-net's process and .NET collectors).</summary>
sealed record Service(long WorkingSet, long ManagedHeap, double QueueLength, double Rejected)
{
    public static async Task<Service> SampleAsync(HttpClient client)
    {
        var text = await client.GetStringAsync("/metrics");
        double Metric(string name) => text.Split('\n').Where(l => l.StartsWith(name, StringComparison.Ordinal) && !l.StartsWith("#"))
            .Select(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture)).Sum();
        return new Service((long)Metric("process_working_set_bytes "), (long)Metric("dotnet_total_memory_bytes "),
            Metric("alexnet_inference_queue_length "), Metric("alexnet_requests_rejected_total{"));
    }

    public override string ToString() =>
        $"working set {WorkingSet / 1048576.0:F0} MiB, managed heap {ManagedHeap / 1048576.0:F0} MiB, queue {QueueLength:F0}, rejected so far {Rejected:F0}";
}

sealed class Phase(string name)
{
    readonly ConcurrentBag<double> _latencies = [];   // ms, of 200s
    int _sent, _ok, _overloaded, _transport, _noRetryAfter;

    public string Name { get; } = name;
    public int Sent => _sent;
    public int Ok => _ok;
    public int Transport => _transport;
    public int NoRetryAfter => _noRetryAfter;
    public ConcurrentDictionary<int, int> Other { get; } = new();
    public string? FirstTransportError { get; private set; }
    public double Seconds { get; set; }
    public double Throughput => _ok / Seconds;
    public List<(double, Service)> Samples { get; } = [];

    public void Record(int status, bool retryAfter, double ms)
    {
        if (status == 200)
        {
            Interlocked.Increment(ref _ok);
            _latencies.Add(ms);
        }
        else if (status == 503)
        {
            Interlocked.Increment(ref _overloaded);
            if (!retryAfter) Interlocked.Increment(ref _noRetryAfter);
        }
        else Other.AddOrUpdate(status, 1, (_, c) => c + 1);
    }

    public void Sending() => Interlocked.Increment(ref _sent);

    public void Failed(Exception e)
    {
        if (Interlocked.Increment(ref _transport) == 1) FirstTransportError = $"{e.GetType().Name}: {e.Message}";
    }

    public override string ToString()
    {
        var sorted = _latencies.Order().ToArray();
        double P(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
        return $"{Name,-34} {_sent,6} {_ok,6} {_overloaded,6} {Other.Values.Sum(),5} {_transport,5} {Throughput,7:F1} {P(0.5),7:F0} {P(0.99),7:F0} " +
            $"{(sorted.Length > 0 ? sorted[^1] : double.NaN),8:F0}  {_noRetryAfter}";
    }
}

sealed class Runner(HttpClient client, byte[][] images)
{
    int _next;

    async Task SendAsync(Phase phase)
    {
        var image = images[Interlocked.Increment(ref _next) % images.Length];
        var content = new ByteArrayContent(image);
        content.Headers.ContentType = new MediaTypeHeaderValue("image/png");
        phase.Sending();
        var watch = Stopwatch.StartNew();
        try
        {
            using var response = await client.PostAsync("/api/classify", content);
            await response.Content.ReadAsByteArrayAsync();
            phase.Record((int)response.StatusCode, response.Headers.RetryAfter is not null, watch.Elapsed.TotalMilliseconds);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            phase.Failed(e);
        }
    }

    /// <summary><paramref name="workers"/> loops, each sending its next request when the last is answered.</summary>
    public async Task<Phase> ClosedAsync(string name, int workers, double seconds)
    {
        var phase = new Phase(name);
        var watch = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(async _ =>
        {
            while (watch.Elapsed.TotalSeconds < seconds) await SendAsync(phase);
        }));
        phase.Seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine(phase);
        return phase;
    }

    /// <summary>Requests at fixed times, <paramref name="rate"/> a second, whether or not earlier ones were answered:
    /// beyond capacity the service must refuse (503), not queue without bound.</summary>
    public async Task<Phase> OpenAsync(string name, double rate, double seconds, double? sampleEvery = null)
    {
        var phase = new Phase(name);
        var pending = new List<Task>();
        var watch = Stopwatch.StartNew();
        var nextSample = sampleEvery ?? double.MaxValue;
        var samples = new List<Task>();
        for (var i = 0; i / rate < seconds; i++)
        {
            var wait = i / rate - watch.Elapsed.TotalSeconds;
            if (wait > 0) await Task.Delay(TimeSpan.FromSeconds(wait));
            pending.Add(SendAsync(phase));
            if (watch.Elapsed.TotalSeconds >= nextSample)
            {
                var at = watch.Elapsed.TotalSeconds;
                samples.Add(Service.SampleAsync(client).ContinueWith(s => { lock (phase.Samples) phase.Samples.Add((at, s.Result)); },
                    TaskContinuationOptions.OnlyOnRanToCompletion));
                nextSample += sampleEvery!.Value;
            }
        }
        await Task.WhenAll(pending);
        await Task.WhenAll(samples);
        phase.Seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine(phase);
        return phase;
    }
}
