using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using AlexNet.Search;

namespace AlexNet.KernelCheck;

/// <summary>
/// The scan kernels against their scalar twins and the index against brute force, on whatever vector paths this
/// process has (DOTNET_EnableAVX512=0 or DOTNET_EnableAVX2=0 take the AVX2 or scalar ones). Prints the paths, each
/// failure, and "checks: N passed, M failed"; exits 1 on any failure.
/// </summary>
static class KernelCheck
{
    static int Main()
    {
        var failures = new List<string>();
        var passed = 0;
        void Check(bool ok, string what)
        {
            if (ok) passed++;
            else failures.Add(what);
        }

        Console.WriteLine($"paths: vector512={Vector512.IsHardwareAccelerated} vector256={Vector256.IsHardwareAccelerated} " +
            $"avx512bw={Avx512BW.IsSupported} avx2={Avx2.IsSupported}");

        var d = new float[4];
        var dots = new long[4];
        foreach (var n in new[] { 1, 31, 33, 64, 100, 4096, 4133 })
        {
            var rng = new Random(n);
            var q = Gaussians(rng, n, 3);
            // Halves of all kinds: normal, subnormal, zero, negative, the largest.
            var x = Enumerable.Range(0, n).Select(i => (Half)(i % 7 switch
            {
                0 => 0f, 1 => 3e-6f * (float)rng.NextDouble(), 2 => -(float)rng.NextDouble(), 3 => 65504f, _ => 10 * (float)rng.NextDouble(),
            })).ToArray();
            var scaled = VectorKernels.SplitPairs<float>([.. q.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock);
            var magnitude = ScalarTwins.Dot([.. x.Select(h => (Half)Math.Abs((float)h))], [.. q.Select(Math.Abs)]);
            Check(Math.Abs(ScalarTwins.Dot(x, q) - VectorKernels.Dot(x, scaled)) <= magnitude * 1e-6, $"fp16 dot, n={n}");

            var u = new byte[n];
            rng.NextBytes(u);
            Array.Fill(u, (byte)255, 0, n / 2);   // the largest products, where an int32 lane would overflow
            var qi = Enumerable.Range(0, n).Select(i => (short)(i % 3 == 0 ? 32767 : i % 3 == 1 ? -32767 : rng.Next(-32767, 32768))).ToArray();
            var splitQi = VectorKernels.SplitPairs<short>(qi, VectorKernels.ByteBlock);
            Check(ScalarTwins.Dot(u, qi) == VectorKernels.Dot(u, splitQi), $"uint8 dot, n={n}");

            var f = Gaussians(rng, n, 2);
            var squares = ScalarTwins.SquaredDistance(f, q);
            Check(Math.Abs(squares - VectorKernels.SquaredDistance(f, q)) <= squares * 1e-6, $"fp32 squared distance, n={n}");

            // Four rows at once give each row its one-row result, bit for bit.
            var rows = Enumerable.Range(0, 4).Select(_ => Gaussians(rng, n, 2)).ToArray();
            VectorKernels.SquaredDistances(rows[0], rows[1], rows[2], rows[3], q, d);
            for (var r = 0; r < 4; r++) Check(d[r] == VectorKernels.SquaredDistance(rows[r], q), $"fp32 four-row, n={n}, row {r}");
            var halves = rows.Select(v => v.Select(e => (Half)e).ToArray()).ToArray();
            VectorKernels.Dots(halves[0], halves[1], halves[2], halves[3], scaled, d);
            for (var r = 0; r < 4; r++) Check(d[r] == VectorKernels.Dot(halves[r], scaled), $"fp16 four-row, n={n}, row {r}");
            var bytes = Enumerable.Range(0, 4).Select(_ => { var b = new byte[n]; rng.NextBytes(b); return b; }).ToArray();
            VectorKernels.Dots(bytes[0], bytes[1], bytes[2], bytes[3], splitQi, dots);
            for (var r = 0; r < 4; r++) Check(dots[r] == ScalarTwins.Dot(bytes[r], qi), $"uint8 four-row, n={n}, row {r}");
        }

        // The dimension-blocked four-query kernels (AVX2 path only): a row scored a segment at a time, its accumulators
        // carried, equals the one-query kernel for each query, bit for bit, across segment boundaries.
        Console.WriteLine($"segments: {VectorKernels.SegmentsFor(4096, 4)}");
        foreach (var n in new[] { 64, 1088, 2240 })
        {
            if (!VectorKernels.SegmentsFor(n, 4)) break;
            var rng = new Random(n + 1);
            var row = Gaussians(rng, n, 2);
            var qs = Enumerable.Range(0, 4).Select(_ => Gaussians(rng, n, 2)).ToArray();
            var half = row.Select(v => (Half)v).ToArray();
            var scaled = qs.Select(q => VectorKernels.SplitPairs<float>([.. q.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock)).ToArray();
            var u = new byte[n];
            rng.NextBytes(u);
            var shorts = qs.Select(q => VectorKernels.SplitPairs<short>([.. q.Select(v => (short)Math.Clamp(v * 8000, -32767, 32767))], VectorKernels.ByteBlock)).ToArray();
            foreach (var segment in new[] { 64, 192, 1024 })   // multiples of every kernel's step; the last one shorter
            {
                var state = new[] { new Vector256<float>[VectorKernels.SegmentState], new Vector256<float>[VectorKernels.SegmentState], new Vector256<float>[VectorKernels.SegmentState] };
                for (var from = 0; from < n; from += segment)
                {
                    var to = Math.Min(n, from + segment);
                    VectorKernels.SquaredDistancesSegment(row, qs[0], qs[1], qs[2], qs[3], from, to, state[0]);
                    VectorKernels.DotsSegment(half, scaled[0], scaled[1], scaled[2], scaled[3], from, to, state[1]);
                    VectorKernels.DotsSegment(u, shorts[0], shorts[1], shorts[2], shorts[3], from, to, state[2]);
                }
                VectorKernels.SquaredDistancesFinish(state[0], d);
                for (var j = 0; j < 4; j++) Check(BitConverter.SingleToInt32Bits(d[j]) == BitConverter.SingleToInt32Bits(VectorKernels.SquaredDistance(row, qs[j])), $"fp32 segments of {segment}, n={n}, query {j}");
                VectorKernels.DotsFinish(state[1], d);
                for (var j = 0; j < 4; j++) Check(BitConverter.SingleToInt32Bits(d[j]) == BitConverter.SingleToInt32Bits(VectorKernels.Dot(half, scaled[j])), $"fp16 segments of {segment}, n={n}, query {j}");
                VectorKernels.DotsFinish(state[2], dots);
                for (var j = 0; j < 4; j++) Check(dots[j] == VectorKernels.Dot(u, shorts[j]), $"uint8 segments of {segment}, n={n}, query {j}");
            }
        }

        // The index: exact search equals brute force bit for bit; fp16 and int8 keep recall@10 >= 0.99.
        {
            var rng = new Random(7);
            var centres = Enumerable.Range(0, 50).Select(_ => Gaussians(rng, 256, 1)).ToArray();
            float[] Feature() { var c = centres[rng.Next(centres.Length)]; var e = Gaussians(rng, 256, 0.6); return [.. c.Select((v, i) => MathF.Max(0, v + e[i]))]; }
            var data = Enumerable.Range(0, 3001).Select(_ => Feature()).ToArray();
            var queries = Enumerable.Range(0, 8).Select(_ => Feature()).ToArray();
            foreach (var storage in new[] { VectorStorage.Float32, VectorStorage.Float16, VectorStorage.Int8 })
            {
                var index = new FeatureIndex(256, storage, threads: 2);
                for (var i = 0; i < data.Length; i++) index.Add(i, data[i]);
                var found = 0;
                foreach (var query in queries)
                {
                    var expected = data.Select((v, i) => (Id: (long)i, Distance: TensorPrimitives.Distance(v, query)))
                        .OrderBy(p => p.Distance).ThenBy(p => p.Id).Take(10).ToArray();
                    var hits = index.Search(query, 10);
                    if (storage == VectorStorage.Float32)
                        Check(expected.Select(e => (e.Id, e.Distance)).SequenceEqual(hits.Select(h => (h.Id, h.Distance))), "fp32 search equals brute force");
                    found += hits.Count(h => expected.Any(e => e.Id == h.Id));
                }
                if (storage != VectorStorage.Float32) Check(found >= 0.99 * 10 * queries.Length, $"{storage} recall@10 {found / (10.0 * queries.Length):F3}");
            }
        }

        foreach (var f in failures) Console.WriteLine($"FAILED: {f}");
        Console.WriteLine($"checks: {passed} passed, {failures.Count} failed");
        return failures.Count == 0 ? 0 : 1;
    }

    static float[] Gaussians(Random rng, int n, double std) =>
        [.. Enumerable.Range(0, n).Select(_ => (float)(std * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())))];
}
