using System.Diagnostics;
using System.Net.Http.Json;
using AlexNet.Api.Endpoints;
using AlexNet.Api.Gallery;
using AlexNet.Api.Inference;

namespace AlexNet.Bench;

/// <summary>
/// Gallery search over HTTP (issue 19): <see cref="WriteGallery"/> fills a SQLite gallery with N rows of the search
/// bench's vectors, stored as computed by the given model (so the service serves them without re-embedding), and
/// <see cref="Run"/> drives GET /api/gallery/{id}/similar?k= (a pure index search: no upload, no forward pass) in
/// closed loops at each concurrency. Every answer (ids and distances as the JSON carries them) is compared with the
/// first answer for the same id. Only for 127.0.0.1.
/// </summary>
public static class HttpSearchBench
{
    public static void WriteGallery(string model, string path, int n, int dim)
    {
        if (File.Exists(path)) throw new IOException($"{path} exists; remove it first.");
        var fingerprint = OnnxClassifier.Fingerprint(model);
        using var store = new SqliteGalleryStore(path);
        var rng = new Random(n);
        var centres = Enumerable.Range(0, 500).Select(_ => Noise(rng, dim, 1f)).ToArray();
        byte[] png = [];   // never read: rows of the served model are not re-embedded
        var sw = Stopwatch.StartNew();
        for (var done = 0; done < n;)
        {
            var batch = Enumerable.Range(0, Math.Min(1000, n - done)).Select(i =>
            {
                var c = centres[rng.Next(centres.Length)];
                var x = Noise(rng, dim, 0.7f);
                for (var j = 0; j < dim; j++) x[j] = MathF.Max(0, x[j] + c[j]);
                return new NewGalleryImage($"row {done + i}", null, new string('0', 64), 1, 1, png, 1, png, fingerprint, x);
            }).ToList();
            store.Insert(batch, DateTimeOffset.UnixEpoch);
            done += batch.Count;
        }
        Console.WriteLine($"{path}: {n:N0} rows of {dim} values from {fingerprint[..19]}... in {sw.Elapsed.TotalSeconds:F0} s");
    }

    public static void Run(Uri url, int n, int[] concurrencies, double seconds, int k)
    {
        if (!url.IsLoopback) throw new ArgumentException($"{url} is not a loopback address; this load test only runs against 127.0.0.1.");
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024, UseCookies = false })
        {
            BaseAddress = url, Timeout = TimeSpan.FromSeconds(120),
        };
        var ids = Enumerable.Range(0, 64).Select(i => 1 + (long)i * (n / 64)).ToArray();
        var first = new string?[ids.Length];
        Closed(client, ids, first, 2, 0.3 * seconds, k);   // warm-up
        double? one = null;
        foreach (var c in concurrencies)
        {
            var (qps, p50, p99, errors, wrong) = Closed(client, ids, first, c, seconds, k);
            one ??= qps;
            Console.WriteLine($"  HTTP concurrency {c,2}: {qps,7:F1} searches/s  x{qps / one,5:F2} of concurrency {concurrencies[0]}  " +
                $"p50 {p50,7:F1} ms  p99 {p99,7:F1} ms  errors {errors}  answers differing from the first for their id: {wrong}");
        }
    }

    static (double Qps, double P50, double P99, int Errors, int Wrong) Closed(HttpClient client, long[] ids, string?[] first, int c, double seconds, int k)
    {
        var latencies = new List<double>();
        int errors = 0, wrong = 0;
        var sw = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, c).Select(async w =>
        {
            var mine = new List<double>();
            for (var m = 0; sw.Elapsed.TotalSeconds < seconds; m++)
            {
                var i = (w * 17 + m * 5) % ids.Length;
                var start = sw.Elapsed.TotalMilliseconds;
                try
                {
                    var answer = await client.GetFromJsonAsync<SimilarResponse>($"/api/gallery/{ids[i]}/similar?k={k}");
                    mine.Add(sw.Elapsed.TotalMilliseconds - start);
                    var key = string.Join(' ', answer!.Neighbours.Select(h => $"{h.Id}:{BitConverter.SingleToInt32Bits(h.Distance):x8}"));
                    if (Interlocked.CompareExchange(ref first[i], key, null) is { } seen && seen != key) Interlocked.Increment(ref wrong);
                }
                catch (HttpRequestException)
                {
                    Interlocked.Increment(ref errors);
                }
            }
            lock (latencies) latencies.AddRange(mine);
        }).ToArray();
        Task.WaitAll(workers);
        var elapsed = sw.Elapsed.TotalSeconds;
        latencies.Sort();
        return latencies.Count == 0 ? (0, double.NaN, double.NaN, errors, wrong)
            : (latencies.Count / elapsed, latencies[latencies.Count / 2], latencies[Math.Min(latencies.Count - 1, (int)(0.99 * latencies.Count))], errors, wrong);
    }

    static float[] Noise(Random rng, int n, float scale)
    {
        var x = new float[n];
        for (var i = 0; i < n; i++) x[i] = scale * (rng.NextSingle() + rng.NextSingle() + rng.NextSingle() - 1.5f) * 2;
        return x;
    }
}
