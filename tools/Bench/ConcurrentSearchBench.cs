using System.Diagnostics;
using AlexNet.Search;

namespace AlexNet.Bench;

/// <summary>
/// Search queries per second at several concurrencies, in process, for each storage (issue 19): closed loops of c
/// callers through one <see cref="SearchCoalescer"/> (searches that arrive together answered by one pass), and for
/// comparison c callers each searching alone (<see cref="FeatureIndex.Search(ReadOnlySpan{float}, int, long?)"/>).
/// Every answer is compared, ids and distance bits, with the same query's answer searched alone before the timing.
/// The rows are those of <see cref="SearchBench"/> (post-ReLU, around 500 centres, seed N).
/// </summary>
public static class ConcurrentSearchBench
{
    /// <param name="aloneBelowMb">The coalescer's <see cref="SearchCoalescer.AloneBelowBytes"/> in MB; null: its default.</param>
    public static void Run(int n, int dim, int[] concurrencies, double seconds, int k, int maxGroup, int delayMs, int threads, VectorStorage[] storages,
        bool eachAlone = true, int? aloneBelowMb = null)
    {
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        foreach (var storage in storages)
        {
            var (index, queries, excludes, alone) = Workload(n, dim, storage, threads, k);
            var aloneBelow = aloneBelowMb is { } mb ? (long)mb << 20 : new SearchCoalescer().AloneBelowBytes;
            Console.WriteLine($"N {n:N0} x {dim} {storage} ({index.ScanBytes / 1048576.0:F1} MiB scanned; alone below {aloneBelow / 1048576.0:F1} MiB), " +
                $"k {k}, {threads} scan threads, max group {maxGroup}, delay {delayMs} ms " +
                $"({DateTime.UtcNow:HH:mm:ss} UTC, load average {File.ReadAllText("/proc/loadavg")[..14]})");
            double? one = null;
            foreach (var c in concurrencies)
            {
                var coalescer = new SearchCoalescer(maxGroup, TimeSpan.FromMilliseconds(delayMs)) { AloneBelowBytes = aloneBelow };
                Closed(c, 0.3 * seconds, (i) => coalescer.Search(index, queries[i], k, excludes[i]), queries.Length, alone);   // warm-up
                var passes = coalescer.Passes;
                var searches = coalescer.Searches;
                var cpu = Cpu();
                var (qps, p50, p99, wrong) = Closed(c, seconds, i => coalescer.Search(index, queries[i], k, excludes[i]), queries.Length, alone);
                one ??= qps;
                var inPasses = coalescer.Searches - searches;   // 0 when the index is under the coalescer's AloneBelowBytes
                var group = inPasses == 0 ? "alone" : $"{inPasses / (double)Math.Max(1, coalescer.Passes - passes),5:F2}";
                Console.WriteLine($"  together concurrency {c,2}: {qps,7:F1} queries/s  x{qps / one,5:F2} of concurrency {concurrencies[0]}  " +
                    $"p50 {p50,7:F1} ms  p99 {p99,7:F1} ms  CPU {(Cpu() - cpu) / (qps * seconds),6:F1} ms/query  mean group {group}  " +
                    $"answers differing from alone: {wrong}");
            }
            foreach (var c in concurrencies.Where(c => c > 1 && eachAlone))
            {
                var cpu = Cpu();
                var (qps, p50, p99, wrong) = Closed(c, seconds, i => index.Search(queries[i], k, excludes[i]), queries.Length, alone);
                Console.WriteLine($"  each alone concurrency {c,2}: {qps,7:F1} queries/s  x{qps / one,5:F2}  p50 {p50,7:F1} ms  p99 {p99,7:F1} ms  " +
                    $"CPU {(Cpu() - cpu) / (qps * seconds),6:F1} ms/query  differing: {wrong}");
            }
            index = null;
            GC.Collect();
        }
    }

    /// <summary>N rows and 64 queries as the search bench makes them (post-ReLU, around 500 centres, seed N); every third
    /// query leaves out a row (its own nearest), as GET /api/gallery/{id}/similar does; and each query's answer alone.</summary>
    static (FeatureIndex Index, float[][] Queries, long?[] Excludes, Neighbour[][] Alone) Workload(int n, int dim, VectorStorage storage,
        int threads, int k)
    {
        var rng = new Random(n);
        var centres = Enumerable.Range(0, 500).Select(_ => Noise(rng, dim, 1f)).ToArray();
        float[] Row() { var c = centres[rng.Next(centres.Length)]; var x = Noise(rng, dim, 0.7f); for (var i = 0; i < dim; i++) x[i] = MathF.Max(0, x[i] + c[i]); return x; }
        var queries = Enumerable.Range(0, 64).Select(_ => Row()).ToArray();
        var index = new FeatureIndex(dim, storage, threads: threads);
        rng = new Random(n + 1);
        for (var id = 0; id < n; id++) index.Add(id, Row());
        var excludes = queries.Select((q, i) => i % 3 == 0 ? index.Search(q, 1)[0].Id : (long?)null).ToArray();
        return (index, queries, excludes, [.. queries.Select((q, i) => index.Search(q, k, excludes[i]))]);
    }

    /// <summary>One pass for g queries (<see cref="FeatureIndex.Search(IReadOnlyList{SearchQuery})"/>) over and over on
    /// this thread, no coalescer: the process's CPU time per answered query for each group size, which separates the
    /// pass's own cost from how the coalescer forms groups and from what other tenants leave of the cores. Answers are
    /// compared with each query's search alone.</summary>
    public static void Pass(int n, int dim, int[] groups, double seconds, int k, int threads, VectorStorage[] storages)
    {
        foreach (var storage in storages)
        {
            var (index, queries, excludes, alone) = Workload(n, dim, storage, threads, k);
            Console.WriteLine($"N {n:N0} x {dim} {storage}, k {k}, {threads} scan threads ({DateTime.UtcNow:HH:mm:ss} UTC, " +
                $"load average {File.ReadAllText("/proc/loadavg")[..14]})");
            double? one = null;
            foreach (var g in groups)
            {
                var wrong = 0;
                long answered = 0;
                var next = 0;
                SearchQuery[] Group() => [.. Enumerable.Range(0, g).Select(_ => { var i = next++ % queries.Length; return new SearchQuery(queries[i], k, excludes[i]); })];
                index.Search(Group());   // warm-up
                var cpu = Cpu();
                var sw = Stopwatch.StartNew();
                while (sw.Elapsed.TotalSeconds < seconds)
                {
                    var first = next;
                    var answers = index.Search(Group());
                    for (var j = 0; j < g; j++) if (!Same(answers[j], alone[(first + j) % queries.Length])) wrong++;
                    answered += g;
                }
                var perQuery = (Cpu() - cpu) / answered;
                one ??= perQuery;
                Console.WriteLine($"  group {g,2}: CPU {perQuery,6:F2} ms/query  {one / perQuery,5:F2}x less than group {groups[0]}  " +
                    $"wall {sw.Elapsed.TotalMilliseconds / answered,6:F2} ms/query  answers differing from alone: {wrong}");
            }
        }
    }

    /// <summary>c callers, each on its own thread, searching query after query for the given time: queries per second,
    /// latency p50 and p99, and how many answers differ from <paramref name="alone"/>.</summary>
    static (double Qps, double P50, double P99, int Wrong) Closed(int c, double seconds, Func<int, Neighbour[]> search, int queries, Neighbour[][] alone)
    {
        var latencies = new List<double>[c];
        var wrong = 0;
        var stop = Stopwatch.StartNew();
        var callers = Enumerable.Range(0, c).Select(t => new Thread(() =>
        {
            var mine = latencies[t] = [];
            for (var m = 0; stop.Elapsed.TotalSeconds < seconds; m++)
            {
                var i = (t * 17 + m * 5) % queries;
                var sw = Stopwatch.StartNew();
                var hits = search(i);
                mine.Add(sw.Elapsed.TotalMilliseconds);
                if (!Same(hits, alone[i])) Interlocked.Increment(ref wrong);
            }
        })).ToList();
        callers.ForEach(t => t.Start());
        callers.ForEach(t => t.Join());
        var elapsed = stop.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        return (all.Length / elapsed, all[all.Length / 2], all[Math.Min(all.Length - 1, (int)(0.99 * all.Length))], wrong);
    }

    /// <summary>This process's CPU time (user + system) in ms: per answered query, a measure of work that other
    /// tenants' load changes less than wall time.</summary>
    static double Cpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;

    static bool Same(Neighbour[] a, Neighbour[] b) =>
        a.Length == b.Length && a.Zip(b).All(p => p.First.Id == p.Second.Id &&
            BitConverter.SingleToInt32Bits(p.First.Distance) == BitConverter.SingleToInt32Bits(p.Second.Distance));

    static float[] Noise(Random rng, int n, float scale)
    {
        var x = new float[n];
        for (var i = 0; i < n; i++) x[i] = scale * (rng.NextSingle() + rng.NextSingle() + rng.NextSingle() - 1.5f) * 2;
        return x;
    }
}
