using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using AlexNet.Search;

namespace AlexNet.Bench;

/// <summary>
/// Exact k-NN ms/query over N x 4096 fp32 against the memory-bandwidth floor, and the fp16 and int8 scans with their
/// recall@10 against the fp32 answers. The host's bandwidth moves within seconds (other tenants), so the floor is
/// measured again right before every query: the fastest of two parallel streaming reads of 1 GiB on huge pages
/// (TensorPrimitives.Sum over one slice per thread, and a sum that reads four streams per thread, the way the scans
/// read), scaled to the fp32 scan's bytes. Each query's ratio is its time over its own floor; the table takes medians.
/// </summary>
public static class SearchBench
{
    const int ReadLength = 1 << 28;   // floats: 1 GiB

    public static void Run(int[] sizes, int dim, int queries, int k, int threads)
    {
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        using var read = new NativeBlock<float>(ReadLength);
        Parallel.For(0, threads, t => Slice(read, t, threads).Fill(1f));
        var managed = GC.AllocateUninitializedArray<float>(ReadLength);
        managed.AsSpan().Fill(1f);
        Console.WriteLine($"streaming reads of 1 GiB, best of 5: {threads} threads: TensorPrimitives.Sum {Best(() => SumRead(read, threads)) / 1e9:F1} GB/s on huge pages, " +
            $"{Best(() => ManagedRead(managed, threads)) / 1e9:F1} on 4 KB pages, four streams a thread {Best(() => FourStreamRead(read, threads)) / 1e9:F1} on huge pages; " +
            $"1 thread: {Best(() => SumRead(read, 1)) / 1e9:F1} / four streams {Best(() => FourStreamRead(read, 1)) / 1e9:F1}");
        managed = null;
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
                rng = new Random(n + 1);
                for (var id = 0; id < n; id++) index.Add(id, Row());
                var ms = new double[qs.Length];
                var floors = new double[qs.Length];
                var ratios = new double[qs.Length];
                var results = new long[qs.Length][];
                for (var w = 0; w < 3; w++) index.Search(qs[w], k);
                for (var i = 0; i < qs.Length; i++)
                {
                    var bandwidth = Math.Max(SumRead(read, threads), FourStreamRead(read, threads));
                    floors[i] = 1000.0 * n * dim * 4 / bandwidth;   // the fp32 scan's bytes at this moment's bandwidth
                    var sw = Stopwatch.StartNew();
                    var hits = index.Search(qs[i], k);
                    ms[i] = sw.Elapsed.TotalMilliseconds;
                    ratios[i] = ms[i] / floors[i];
                    results[i] = [.. hits.Select(h => h.Id)];
                }
                exact ??= results;
                var recall = results.Select((r, i) => r.Intersect(exact[i]).Count()).Sum() / (double)(k * qs.Length);
                Array.Sort(ms);
                Array.Sort(floors);
                Array.Sort(ratios);
                Console.WriteLine($"N {n,7:N0} {storage,-8} scan {index.ScanBytes / 1e6,7:F0} MB  median {ms[ms.Length / 2],7:F2} ms/query  " +
                    $"(min {ms[0],6:F2}, max {ms[^1],6:F2})  fp32 floor median {floors[floors.Length / 2],6:F2} ms ({1e-6 * n * dim * 4 / floors[floors.Length / 2]:F1} GB/s)  " +
                    $"ratio median {ratios[ratios.Length / 2],5:F2} (quartiles {ratios[ratios.Length / 4]:F2}-{ratios[3 * ratios.Length / 4]:F2})  recall@{k} {recall:F4}");
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

    static Span<float> Slice(NativeBlock<float> block, int t, int threads) =>
        block.AsSpan((int)((long)ReadLength * t / threads), ReadLength / threads);

    static double Best(Func<double> bytesPerSecond) => Enumerable.Range(0, 5).Max(_ => bytesPerSecond());

    /// <summary>Bytes per second of one parallel read of the block: TensorPrimitives.Sum over one slice per thread.</summary>
    static double SumRead(NativeBlock<float> block, int threads) =>
        Timed(threads, t => TensorPrimitives.Sum<float>(Slice(block, t, threads)));

    /// <summary>The same on a managed array (4 KB pages).</summary>
    static double ManagedRead(float[] array, int threads) =>
        Timed(threads, t => TensorPrimitives.Sum<float>(array.AsSpan((int)((long)ReadLength * t / threads), ReadLength / threads)));

    /// <summary>Bytes per second of one parallel read in which each thread sums its slice as four streams a quarter of
    /// the slice apart, 64 bytes from each in turn (as FeatureIndex's scans read rows).</summary>
    static double FourStreamRead(NativeBlock<float> block, int threads) => Timed(threads, t =>
    {
        var slice = Slice(block, t, threads);
        var quarter = slice.Length / 4;
        ref var s0 = ref MemoryMarshal.GetReference(slice);
        ref var s1 = ref Unsafe.Add(ref s0, quarter);
        ref var s2 = ref Unsafe.Add(ref s1, quarter);
        ref var s3 = ref Unsafe.Add(ref s2, quarter);
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (nuint i = 0; i + 16 <= (nuint)quarter; i += 16)
        {
            a0 += Vector512.LoadUnsafe(ref s0, i);
            a1 += Vector512.LoadUnsafe(ref s1, i);
            a2 += Vector512.LoadUnsafe(ref s2, i);
            a3 += Vector512.LoadUnsafe(ref s3, i);
        }
        return Vector512.Sum((a0 + a1) + (a2 + a3));
    });

    static double Timed(int threads, Func<int, float> read)
    {
        var sums = new float[threads];
        var sw = Stopwatch.StartNew();
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t => sums[t] = read(t));
        var seconds = sw.Elapsed.TotalSeconds;
        if (sums.Sum() <= 0) throw new InvalidOperationException("the sum was optimised away");
        return 4.0 * ReadLength / seconds;
    }
}

/// <summary>The scan kernels on rows that fit in L2 (one core, 64-byte aligned as in FeatureIndex): their compute
/// speed without memory stalls. Four rows a call, as the scans call them. Rates are per second of the process's CPU
/// time.</summary>
public static class KernelBench
{
    public static void Run(int dim, int rows)
    {
        rows = Math.Max(4, rows / 4 * 4);
        var rng = new Random(1);
        using var f = new NativeBlock<float>(rows * dim);
        using var h = new NativeBlock<Half>(rows * dim);
        using var u = new NativeBlock<byte>(rows * dim);
        for (var i = 0; i < rows * dim; i++)
        {
            f.Span[i] = rng.NextSingle();
            h.Span[i] = (Half)f.Span[i];
            u.Span[i] = (byte)(f.Span[i] * 255);
        }
        var q = new float[dim]; for (var i = 0; i < dim; i++) q[i] = rng.NextSingle();
        using var qf = Copy(q);
        using var qi = Copy(VectorKernels.SplitPairs<short>(q.Select(v => (short)(v * 32767)).ToArray(), VectorKernels.ByteBlock));
        using var qh = Copy(VectorKernels.SplitPairs<float>([.. q.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock));
        var d = new float[4];
        var l = new long[4];
        double sink = 0;
        void T(string name, int bytesPerRow, Action<int> kernel)
        {
            for (var r = 0; r < rows; r += 4) kernel(r);
            var sw = Stopwatch.StartNew(); long n = 0;
            var cpu = CpuSeconds();
            while (sw.ElapsedMilliseconds < 1000) { for (var r = 0; r < rows; r += 4) { kernel(r); sink += d[0] + l[0]; } n += rows; }
            var seconds = CpuSeconds() - cpu;
            Console.WriteLine($"{name,-24} {n * (double)bytesPerRow / seconds / 1e9,6:F1} GB/s  {seconds * 1e6 / n,6:F3} us/row");
        }
        T("fp32 SquaredDistances", 4 * dim, r => VectorKernels.SquaredDistances(f.AsSpan(r * dim, dim), f.AsSpan((r + 1) * dim, dim),
            f.AsSpan((r + 2) * dim, dim), f.AsSpan((r + 3) * dim, dim), qf.Span, d));
        T("fp16 Dots", 2 * dim, r => VectorKernels.Dots(h.AsSpan(r * dim, dim), h.AsSpan((r + 1) * dim, dim),
            h.AsSpan((r + 2) * dim, dim), h.AsSpan((r + 3) * dim, dim), qh.Span, d));
        T("u8 Dots", dim, r => VectorKernels.Dots(u.AsSpan(r * dim, dim), u.AsSpan((r + 1) * dim, dim),
            u.AsSpan((r + 2) * dim, dim), u.AsSpan((r + 3) * dim, dim), qi.Span, l));
        // Two queries a call (searches answered together; AVX-512 only, elsewhere two one-query calls): bytes of rows
        // scored, counting each row once per query.
        var e = new float[4];
        var m = new long[4];
        using var qf2 = Copy(q.Reverse().ToArray());
        using var qi2 = Copy(VectorKernels.SplitPairs<short>(q.Reverse().Select(v => (short)(v * 32767)).ToArray(), VectorKernels.ByteBlock));
        using var qh2 = Copy(VectorKernels.SplitPairs<float>([.. q.Reverse().Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock));
        T("fp32 two queries", 8 * dim, r => VectorKernels.SquaredDistances(f.AsSpan(r * dim, dim), f.AsSpan((r + 1) * dim, dim),
            f.AsSpan((r + 2) * dim, dim), f.AsSpan((r + 3) * dim, dim), qf.Span, qf2.Span, d, e));
        T("fp16 two queries", 4 * dim, r => VectorKernels.Dots(h.AsSpan(r * dim, dim), h.AsSpan((r + 1) * dim, dim),
            h.AsSpan((r + 2) * dim, dim), h.AsSpan((r + 3) * dim, dim), qh.Span, qh2.Span, d, e));
        T("u8 two queries", 2 * dim, r => VectorKernels.Dots(u.AsSpan(r * dim, dim), u.AsSpan((r + 1) * dim, dim),
            u.AsSpan((r + 2) * dim, dim), u.AsSpan((r + 3) * dim, dim), qi.Span, qi2.Span, l, m));
        // One row against four queries (the AVX2 form): bytes of rows scored, each row counted once per query.
        using var qf3 = Copy(q.Select(v => v * 0.5f).ToArray());
        using var qf4 = Copy(q.Select(v => v + 0.25f).ToArray());
        using var qh3 = Copy(VectorKernels.SplitPairs<float>([.. q.Select(v => 0.5f * v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock));
        using var qh4 = Copy(VectorKernels.SplitPairs<float>([.. q.Select(v => (v + 0.25f) * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock));
        using var qi3 = Copy(VectorKernels.SplitPairs<short>(q.Select(v => (short)(v * 16000)).ToArray(), VectorKernels.ByteBlock));
        using var qi4 = Copy(VectorKernels.SplitPairs<short>(q.Select(v => (short)(v * -16000)).ToArray(), VectorKernels.ByteBlock));
        if (VectorKernels.TrySquaredDistances(f.AsSpan(0, dim), qf.Span, qf2.Span, qf3.Span, qf4.Span, d))
        {
            T("fp32 row x four queries", 16 * dim, r => { for (var j = 0; j < 4; j++) VectorKernels.TrySquaredDistances(f.AsSpan((r + j) * dim, dim), qf.Span, qf2.Span, qf3.Span, qf4.Span, d); });
            T("fp16 row x four queries", 8 * dim, r => { for (var j = 0; j < 4; j++) VectorKernels.TryDots(h.AsSpan((r + j) * dim, dim), qh.Span, qh2.Span, qh3.Span, qh4.Span, d); });
            T("u8 row x four queries", 4 * dim, r => { for (var j = 0; j < 4; j++) VectorKernels.TryDots(u.AsSpan((r + j) * dim, dim), qi.Span, qi2.Span, qi3.Span, qi4.Span, l); });
        }
        // The same blocked over the dimensions, as a pass runs them (CodedRows.Segments): chunks of about 256 KB of
        // rows, each row a segment (about 4 KB of each query) at a time with its accumulators carried, then finished.
        if (VectorKernels.SegmentsFor(dim, 4))
        {
            var state = new System.Runtime.Intrinsics.Vector256<float>[rows * VectorKernels.SegmentState];
            void S(string name, int bytesPerValue, int queryBytes, Action<int, int, int, int> segment, Action<int> finish)
            {
                var step = VectorKernels.SegmentStep(bytesPerValue);
                var values = Math.Max(1, VectorKernels.SegmentQueryBytes / queryBytes / step) * step;
                var chunk = (int)Math.Clamp((256 << 10) / ((long)bytesPerValue * dim), 1, rows);
                void Pass()
                {
                    for (var first = 0; first < rows; first += chunk)
                    {
                        var end = Math.Min(rows, first + chunk);
                        state.AsSpan(first * VectorKernels.SegmentState, (end - first) * VectorKernels.SegmentState).Clear();
                        for (var from = 0; from < dim; from += values)
                            for (var r = first; r < end; r++) segment(r, from, Math.Min(dim, from + values), r * VectorKernels.SegmentState);
                        for (var r = first; r < end; r++) finish(r * VectorKernels.SegmentState);
                    }
                }
                Pass();
                var sw = Stopwatch.StartNew(); long n = 0;
                var cpu = CpuSeconds();
                while (sw.ElapsedMilliseconds < 1000) { Pass(); sink += d[0] + l[0]; n += rows; }
                var seconds = CpuSeconds() - cpu;
                Console.WriteLine($"{name,-24} {n * 4.0 * bytesPerValue * dim / seconds / 1e9,6:F1} GB/s  {seconds * 1e6 / n,6:F3} us/row  " +
                    $"(segments of {values} values, chunks of {chunk} rows)");
            }
            S("fp32 x four, segments", 4, 4, (r, from, to, at) => VectorKernels.SquaredDistancesSegment(f.AsSpan(r * dim, dim), qf.Span, qf2.Span, qf3.Span, qf4.Span,
                from, to, state.AsSpan(at, VectorKernels.SegmentState)), at => VectorKernels.SquaredDistancesFinish(state.AsSpan(at, VectorKernels.SegmentState), d));
            foreach (var kb in new[] { 1, 2, 8 })   // other segment sizes than the scan's, fp32
                S($"fp32 x four, {kb} KB", 4, 4 * VectorKernels.SegmentQueryBytes / (kb << 10), (r, from, to, at) => VectorKernels.SquaredDistancesSegment(f.AsSpan(r * dim, dim),
                    qf.Span, qf2.Span, qf3.Span, qf4.Span, from, to, state.AsSpan(at, VectorKernels.SegmentState)), at => VectorKernels.SquaredDistancesFinish(state.AsSpan(at, VectorKernels.SegmentState), d));
            S("fp16 x four, segments", 2, 4, (r, from, to, at) => VectorKernels.DotsSegment(h.AsSpan(r * dim, dim), qh.Span, qh2.Span, qh3.Span, qh4.Span,
                from, to, state.AsSpan(at, VectorKernels.SegmentState)), at => VectorKernels.DotsFinish(state.AsSpan(at, VectorKernels.SegmentState), d));
            S("u8 x four, segments", 1, 2, (r, from, to, at) => VectorKernels.DotsSegment(u.AsSpan(r * dim, dim), qi.Span, qi2.Span, qi3.Span, qi4.Span,
                from, to, state.AsSpan(at, VectorKernels.SegmentState)), at => VectorKernels.DotsFinish(state.AsSpan(at, VectorKernels.SegmentState), l));
        }
        Console.WriteLine(sink > 0 ? "" : "?");
    }

    /// <summary>This process's CPU time: rates per CPU second, which other tenants' load on the cores changes less than
    /// per wall second (the bench runs on one thread).</summary>
    static double CpuSeconds() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    static NativeBlock<T> Copy<T>(T[] values) where T : unmanaged
    {
        var block = new NativeBlock<T>(values.Length);
        values.CopyTo(block.Span);
        return block;
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
