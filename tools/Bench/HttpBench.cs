using System.Diagnostics;
using System.Net.Http.Headers;

namespace AlexNet.Bench;

/// <summary>
/// POST /api/classify with real JPEG uploads (multipart, one image a request) against a running service: closed
/// loop at each concurrency (img/s, p50/p99 latency), then an open loop at half the best closed-loop rate (fixed
/// arrival times, so queueing shows in the tail). Start the service with Cache:Enabled=false, or repeated images are
/// answered from the cache. Only for 127.0.0.1.
/// </summary>
public static class HttpBench
{
    public sealed record Result(string Name, double ImagesPerSecond, double P50, double P90, double P99, double Max, int Errors)
    {
        /// <summary>The service's CPU time (user + system) per answered image, when its pid is known.</summary>
        public double CpuMsPerImage { get; set; } = double.NaN;
    }

    public static List<Result> Run(Uri url, string[] images, int[] concurrencies, double seconds, double? halfLoadOf, bool openLoop, int? pid)
    {
        if (!url.IsLoopback) throw new ArgumentException($"{url} is not a loopback address; this load test only runs against 127.0.0.1.");
        var files = images.Select(File.ReadAllBytes).ToArray();
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024, UseCookies = false })
        {
            BaseAddress = url, Timeout = TimeSpan.FromSeconds(60),
        };
        Memory(pid, "service before load");
        // Warm-up: JIT, connection, the batcher's first batches.
        ClosedLoop(client, files, 4, 3, "warm-up");
        var results = new List<Result>();
        Result Measure(Func<Result> phase)
        {
            var cpu = CpuSeconds(pid);
            var r = phase();
            r.CpuMsPerImage = 1000 * (CpuSeconds(pid) - cpu) / (r.ImagesPerSecond * seconds);
            Print(r);
            results.Add(r);
            return r;
        }
        var best = 0.0;
        foreach (var c in concurrencies)
            best = Math.Max(best, Measure(() => ClosedLoop(client, files, c, seconds, $"concurrency {c,2}")).ImagesPerSecond);
        if (openLoop)
        {
            var rate = (halfLoadOf ?? best) / 2;
            Measure(() => OpenLoop(client, files, rate, seconds, $"open loop {rate:F1}/s (half of {halfLoadOf ?? best:F1})"));
        }
        Memory(pid, "service after load");
        return results;
    }

    /// <summary>utime + stime of a process from /proc (clock ticks of 1/100 s on Linux), or NaN.</summary>
    static double CpuSeconds(int? pid)
    {
        if (pid is null) return double.NaN;
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');   // after "pid (comm) ": state is field 3
        return (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0;   // utime, stime: fields 14 and 15
    }

    static void Print(Result r) => Console.WriteLine($"{r.Name,-34} {r.ImagesPerSecond,7:F1} img/s  p50 {r.P50,7:F1} ms  p90 {r.P90,7:F1} ms  " +
        $"p99 {r.P99,7:F1} ms  max {r.Max,7:F1} ms  p99/p50 {r.P99 / r.P50,5:F2}  errors {r.Errors}  service CPU {r.CpuMsPerImage,5:F1} ms/img");

    static void Memory(int? pid, string when)
    {
        if (pid is null) return;
        var status = File.ReadAllLines($"/proc/{pid}/status");
        string Field(string name) => status.FirstOrDefault(l => l.StartsWith(name + ":"))?.Split(':', 2)[1].Trim() ?? "?";
        Console.WriteLine($"{when}: VmRSS {Field("VmRSS")}, peak VmHWM {Field("VmHWM")}");
    }

    static async Task<(double Ms, bool Ok)> PostAsync(HttpClient client, byte[] jpeg)
    {
        using var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(jpeg);
        file.Headers.ContentType = new MediaTypeHeaderValue("image/jpeg");
        form.Add(file, "image", "upload.jpg");
        var sw = Stopwatch.StartNew();
        try
        {
            using var response = await client.PostAsync("/api/classify", form);
            await response.Content.ReadAsByteArrayAsync();
            return (sw.Elapsed.TotalMilliseconds, response.IsSuccessStatusCode);
        }
        catch (HttpRequestException)
        {
            return (sw.Elapsed.TotalMilliseconds, false);
        }
    }

    static Result ClosedLoop(HttpClient client, byte[][] files, int concurrency, double seconds, string name)
    {
        var latencies = new List<double>();
        var errors = 0;
        var sw = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, concurrency).Select(async w =>
        {
            var mine = new List<double>();
            var i = w;
            while (sw.Elapsed.TotalSeconds < seconds)
            {
                var (ms, ok) = await PostAsync(client, files[i++ % files.Length]);
                if (ok) mine.Add(ms);
                else Interlocked.Increment(ref errors);
            }
            lock (latencies) latencies.AddRange(mine);
        }).ToArray();
        Task.WaitAll(workers);
        return Summarise(name, latencies, sw.Elapsed.TotalSeconds, errors);
    }

    static Result OpenLoop(HttpClient client, byte[][] files, double rate, double seconds, string name)
    {
        var latencies = new List<double>();
        var errors = 0;
        var pending = new List<Task>();
        var sw = Stopwatch.StartNew();
        var count = (int)(rate * seconds);
        for (var i = 0; i < count; i++)
        {
            var due = i / rate;
            var wait = due - sw.Elapsed.TotalSeconds;
            if (wait > 0.002) Thread.Sleep(TimeSpan.FromSeconds(wait));
            else if (wait > 0) Thread.SpinWait(100);
            var file = files[i % files.Length];
            pending.Add(Task.Run(async () =>
            {
                var (ms, ok) = await PostAsync(client, file);
                if (!ok) Interlocked.Increment(ref errors);
                else lock (latencies) latencies.Add(ms);
            }));
        }
        Task.WaitAll([.. pending]);
        return Summarise(name, latencies, sw.Elapsed.TotalSeconds, errors);
    }

    static Result Summarise(string name, List<double> latencies, double seconds, int errors)
    {
        latencies.Sort();
        double P(double q) => latencies.Count == 0 ? double.NaN : latencies[Math.Min(latencies.Count - 1, (int)(q * latencies.Count))];
        return new Result(name, latencies.Count / seconds, P(0.5), P(0.9), P(0.99), latencies.LastOrDefault(), errors);
    }
}
