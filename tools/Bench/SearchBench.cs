using System.Diagnostics;
using System.Numerics.Tensors;
using AlexNet.Api.Gallery;

namespace AlexNet.Bench;

/// <summary>
/// Exact k-NN ms/query over N x 4096 fp32 against the memory-bandwidth floor measured in the same run (a parallel
/// streaming sum over a 1 GiB array), and the fp16 and int8 scans with their recall@10 against the fp32 answers.
/// </summary>
public static class SearchBench
{
    public static void Run(int[] sizes, int dim, int queries, int k, int threads)
    {
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        var (plain, huge) = (Bandwidth(threads, hugePages: false), Bandwidth(threads, hugePages: true));
        var bandwidth = Math.Max(plain, huge);   // the floor: the fastest streaming read we know how to do
        Console.WriteLine($"memory bandwidth (streaming sum of 1 GiB, {threads} threads, best of 5): {huge / 1e9:F1} GB/s on huge pages, " +
            $"{plain / 1e9:F1} GB/s on 4 KB pages; 1 thread on huge pages: {Bandwidth(1, hugePages: true) / 1e9:F1} GB/s");
        foreach (var n in sizes)
        {
            var rng = new Random(n);
            var centres = Enumerable.Range(0, 500).Select(_ => Noise(rng, dim, 1f)).ToArray();
            float[] Row() { var c = centres[rng.Next(centres.Length)]; var x = Noise(rng, dim, 0.7f); for (var i = 0; i < dim; i++) x[i] = MathF.Max(0, x[i] + c[i]); return x; }
            var qs = Enumerable.Range(0, queries).Select(_ => Row()).ToArray();
            long[][]? exact = null;
            foreach (var storage in new[] { VectorStorage.Float32, VectorStorage.Float16, VectorStorage.Int8 })
            {
                var index = new FeatureIndex(dim, storage, threads: threads);
                var rowRng = new Random(n + 1);
                rng = rowRng;
                for (var id = 0; id < n; id++) index.Add(id, Row());
                var floorMs = 1000.0 * n * dim * 4 / bandwidth;   // the fp32 scan's bytes at full bandwidth
                var ms = new double[qs.Length];
                var results = new long[qs.Length][];
                for (var w = 0; w < 3; w++) index.Search(qs[w], k);
                for (var i = 0; i < qs.Length; i++)
                {
                    var sw = Stopwatch.StartNew();
                    var hits = index.Search(qs[i], k);
                    ms[i] = sw.Elapsed.TotalMilliseconds;
                    results[i] = [.. hits.Select(h => h.Id)];
                }
                exact ??= results;
                var recall = results.Select((r, i) => r.Intersect(exact[i]).Count()).Sum() / (double)(k * qs.Length);
                Array.Sort(ms);
                var median = ms[ms.Length / 2];
                Console.WriteLine($"N {n,7:N0} {storage,-8} scan {index.ScanBytes / 1e6,7:F0} MB  median {median,7:F2} ms/query  " +
                    $"(min {ms[0],6:F2}, max {ms[^1],6:F2})  fp32 floor {floorMs,6:F2} ms  ratio {median / floorMs,5:F2}  recall@{k} {recall:F4}");
                index = null;
                GC.Collect();
            }
        }
    }

    static float[] Noise(Random rng, int n, float scale)
    {
        var x = new float[n];
        for (var i = 0; i < n; i++) x[i] = scale * (rng.NextSingle() + rng.NextSingle() + rng.NextSingle() - 1.5f) * 2;
        return x;
    }

    /// <summary>Bytes per second of a parallel streaming read (TensorPrimitives.Sum over contiguous slices of 1 GiB),
    /// on a managed array (4 KB pages) or on a NativeBlock (2 MB pages, as FeatureIndex stores its rows).</summary>
    public static double Bandwidth(int threads, bool hugePages)
    {
        const int length = 1 << 28;   // floats: 1 GiB
        using var block = hugePages ? new NativeBlock<float>(length) : null;
        var array = hugePages ? null : GC.AllocateUninitializedArray<float>(length);
        Span<float> Slice(int t) => hugePages ? block!.AsSpan((int)((long)length * t / threads), length / threads)
            : array.AsSpan((int)((long)length * t / threads), length / threads);
        Parallel.For(0, threads, t => Slice(t).Fill(1f));
        var best = double.MaxValue;
        var sums = new float[threads];
        for (var rep = 0; rep < 5; rep++)
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => sums[t] = TensorPrimitives.Sum<float>(Slice(t)));
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        if (sums.Sum() <= 0) throw new InvalidOperationException("the sum was optimised away");
        return 4.0 * length / best;
    }
}

/// <summary>The scan kernels on rows that fit in L2 (one core): their compute speed without memory stalls.</summary>
public static class KernelBench
{
    public static void Run(int dim, int rows)
    {
        var rng = new Random(1);
        var f = new float[rows * dim]; for (var i = 0; i < f.Length; i++) f[i] = rng.NextSingle();
        var h = f.Select(v => (Half)v).ToArray();
        var u = f.Select(v => (byte)(v * 255)).ToArray();
        var q = new float[dim]; for (var i = 0; i < dim; i++) q[i] = rng.NextSingle();
        var qi = VectorKernels.SplitPairs<short>(q.Select(v => (short)(v * 32767)).ToArray(), VectorKernels.ByteBlock);
        var qh = VectorKernels.SplitPairs<float>([.. q.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock);
        double sink = 0;
        void T(string name, int bytesPerRow, Func<int, double> kernel)
        {
            for (var r = 0; r < rows; r++) sink += kernel(r);
            var sw = System.Diagnostics.Stopwatch.StartNew(); long n = 0;
            while (sw.ElapsedMilliseconds < 1000) { for (var r = 0; r < rows; r++) sink += kernel(r); n += rows; }
            Console.WriteLine($"{name,-24} {n * (double)bytesPerRow / sw.Elapsed.TotalSeconds / 1e9,6:F1} GB/s  {sw.Elapsed.TotalMilliseconds * 1e3 / n,6:F3} us/row");
        }
        T("fp32 TP.Distance", 4 * dim, r => System.Numerics.Tensors.TensorPrimitives.Distance(f.AsSpan(r * dim, dim), q));
        T("fp16 Dot", 2 * dim, r => VectorKernels.Dot(h.AsSpan(r * dim, dim), qh));
        T("u8 Dot", dim, r => VectorKernels.Dot(u.AsSpan(r * dim, dim), qi));
        Console.WriteLine(sink > 0 ? "" : "?");
    }
}

/// <summary>One core streaming 1 GiB on huge pages: a plain sum against the two-input row kernels (what a scan
/// can reach per core: the second input, though cached, costs about a fifth).</summary>
public static class StreamExperiment
{
    public static void Run()
    {
        const int dim = 4096;
        var rows = (1 << 28) / dim;   // 1 GiB of floats
        using var block = new NativeBlock<float>(rows * dim);
        var data = block.Span;
        for (var i = 0; i < data.Length; i++) data[i] = i % 5;
        using var qb = new NativeBlock<float>(dim);
        qb.Span.Fill(0.5f);
        double sink = 0;
        void T(string name, Func<double> a)
        {
            a();
            var best = double.MaxValue;
            for (var rep = 0; rep < 3; rep++) { var sw = System.Diagnostics.Stopwatch.StartNew(); sink += a(); best = Math.Min(best, sw.Elapsed.TotalSeconds); }
            Console.WriteLine($"{name,-40} {4.0 * rows * dim / best / 1e9,6:F1} GB/s (1 thread, huge pages, aligned)");
        }
        T("TP.Sum whole array", () => System.Numerics.Tensors.TensorPrimitives.Sum<float>(block.Span));
        T("TP.Sum per row", () => { double s = 0; var d = block.Span; for (var r = 0; r < rows; r++) s += System.Numerics.Tensors.TensorPrimitives.Sum<float>(d.Slice(r * dim, dim)); return s; });
        T("TP.Distance per row", () => { double s = 0; var d = block.Span; var q = qb.Span; for (var r = 0; r < rows; r++) s += System.Numerics.Tensors.TensorPrimitives.Distance(d.Slice(r * dim, dim), q); return s; });
        T("OneInput sum per row", () => { double s = 0; var d = block.Span; for (var r = 0; r < rows; r++) s += OneInput(d.Slice(r * dim, dim)); return s; });
        T("TP.Dot per row", () => { double s = 0; var d = block.Span; var q = qb.Span; for (var r = 0; r < rows; r++) s += System.Numerics.Tensors.TensorPrimitives.Dot(d.Slice(r * dim, dim), q); return s; });
        Console.WriteLine(sink != 0 ? "" : "?");
    }

    static float OneInput(ReadOnlySpan<float> x)
    {
        ref var xs = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        System.Runtime.Intrinsics.Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (var i = 0; i <= x.Length - 64; i += 64)
        {
            a0 += System.Runtime.Intrinsics.Vector512.LoadUnsafe(ref xs, (nuint)i);
            a1 += System.Runtime.Intrinsics.Vector512.LoadUnsafe(ref xs, (nuint)(i + 16));
            a2 += System.Runtime.Intrinsics.Vector512.LoadUnsafe(ref xs, (nuint)(i + 32));
            a3 += System.Runtime.Intrinsics.Vector512.LoadUnsafe(ref xs, (nuint)(i + 48));
        }
        return System.Runtime.Intrinsics.Vector512.Sum((a0 + a1) + (a2 + a3));
    }
}
