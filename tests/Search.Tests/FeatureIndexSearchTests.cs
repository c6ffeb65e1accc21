using System.Numerics.Tensors;

namespace AlexNet.Search.Tests;

/// <summary>
/// The parallel scan and the compact storages of <see cref="FeatureIndex"/>: exact search equals brute force across
/// blocks and partitions, the SIMD kernels equal their scalar twins, and fp16 and int8 keep recall@10 at or above 0.99
/// with exact distances for what they return.
/// </summary>
public sealed class FeatureIndexSearchTests
{
    const double MinRecall = 0.99;

    public static TheoryData<VectorStorage> EveryStorage => [VectorStorage.Float32, VectorStorage.Float16, VectorStorage.Int8];

    /// <summary>Post-ReLU vectors around a few hundred centres, like FC7 features: sparse, non-negative, clustered.</summary>
    static float[][] Features(int count, int dim, int seed, int clusters = 200)
    {
        var rng = new Random(seed);
        var centres = Enumerable.Range(0, clusters).Select(_ => Gaussians(rng, dim, 1.0)).ToArray();
        return [.. Enumerable.Range(0, count).Select(_ =>
        {
            var c = centres[rng.Next(clusters)];
            var noise = Gaussians(rng, dim, 0.6);
            return c.Select((v, i) => MathF.Max(0, v + noise[i])).ToArray();
        })];
    }

    static float[] Gaussians(Random rng, int n, double std) =>
        [.. Enumerable.Range(0, n).Select(_ => (float)(std * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble())))];

    /// <summary>Ids (row + 1) of the k nearest by brute force, nearest first, ties to the lower id.</summary>
    static (long Id, float Distance)[] BruteForce(float[][] rows, float[] query, int k, long? exclude = null) =>
        [.. rows.Select((v, i) => (Id: (long)i + 1, Distance: TensorPrimitives.Distance(v, query)))
            .Where(p => p.Id != exclude).OrderBy(p => p.Distance).ThenBy(p => p.Id).Take(k)];

    static FeatureIndex Index(float[][] rows, VectorStorage storage, int threads = 0, int rerankFactor = 10)
    {
        var index = new FeatureIndex(rows[0].Length, storage, rerankFactor, threads);
        for (var i = 0; i < rows.Length; i++) index.Add(i + 1, rows[i]);
        return index;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void ExactSearchEqualsBruteForceAcrossBlocksAndPartitions(int threads)
    {
        // 6500 x 512 = 3.3 M values: three partitions of contiguous rows with threads = 3, and seven storage blocks.
        var rows = Features(6500, 512, seed: 1);
        var index = Index(rows, VectorStorage.Float32, threads);
        var queries = Features(20, 512, seed: 2);
        foreach (var q in queries.Append(rows[4321]))
        {
            var expected = BruteForce(rows, q, 10);
            var hits = index.Search(q, 10);
            Assert.Equal(expected.Select(e => e.Id), hits.Select(h => h.Id));
            Assert.Equal(expected.Select(e => e.Distance), hits.Select(h => h.Distance));   // bit for bit
        }
    }

    [Theory]
    [MemberData(nameof(EveryStorage))]
    public void TiesGoToTheEarlierRowInEveryPartition(VectorStorage storage)
    {
        var rng = new Random(3);
        var same = Gaussians(rng, 1024, 1);
        var rows = Enumerable.Range(0, 3000).Select(i => i % 500 == 7 ? same : Gaussians(rng, 1024, 1)).ToArray();
        var index = Index(rows, storage, threads: 2);   // 3000 x 1024: two partitions, ties on both sides of the split
        Assert.Equal([8L, 508, 1008, 1508, 2008, 2508], index.Search(same, 6).Select(h => h.Id));
        Assert.All(index.Search(same, 6), h => Assert.Equal(0f, h.Distance));
    }

    [Theory]
    [InlineData(VectorStorage.Float16)]
    [InlineData(VectorStorage.Int8)]
    public void CompactStorageKeepsRecallAt10AndReturnsExactDistances(VectorStorage storage)
    {
        var rows = Features(6000, 512, seed: 4);
        var index = Index(rows, storage);
        var queries = Features(40, 512, seed: 5);
        double found = 0;
        foreach (var q in queries)
        {
            var expected = BruteForce(rows, q, 10);
            var hits = index.Search(q, 10);
            found += hits.Select(h => h.Id).Intersect(expected.Select(e => e.Id)).Count();
            // Whatever comes back carries its exact fp32 distance, sorted.
            Assert.All(hits, h => Assert.Equal(TensorPrimitives.Distance(rows[h.Id - 1], q), h.Distance));
            Assert.Equal(hits.OrderBy(h => h.Distance).Select(h => h.Id), hits.Select(h => h.Id));
        }
        Assert.InRange(found / (10.0 * queries.Length), MinRecall, 1.0);
    }

    [Theory]
    [InlineData(VectorStorage.Float16)]
    [InlineData(VectorStorage.Int8)]
    public void CompactStorageKeepsRecallOnStructurelessData(VectorStorage storage)
    {
        // Uniform noise is the hard case: all distances are nearly equal, so quantisation error reorders the most.
        var rng = new Random(6);
        var rows = Enumerable.Range(0, 4000).Select(_ => Enumerable.Range(0, 512).Select(_ => (float)rng.NextDouble()).ToArray()).ToArray();
        var index = Index(rows, storage);
        double found = 0;
        for (var i = 0; i < 30; i++)
        {
            var q = Enumerable.Range(0, 512).Select(_ => (float)rng.NextDouble()).ToArray();
            found += index.Search(q, 10).Select(h => h.Id).Intersect(BruteForce(rows, q, 10).Select(e => e.Id)).Count();
        }
        Assert.InRange(found / 300.0, MinRecall, 1.0);
    }

    [Theory]
    [MemberData(nameof(EveryStorage))]
    public void RemovalsAcrossBlocksKeepSearchAndGetExact(VectorStorage storage)
    {
        var rows = Features(2600, 64, seed: 7);
        var index = Index(rows, storage);
        var alive = Enumerable.Range(1, rows.Length).Select(i => (long)i).ToHashSet();
        var rng = new Random(8);
        foreach (var id in Enumerable.Range(1, rows.Length).OrderBy(_ => rng.Next()).Take(1900))
        {
            Assert.True(index.Remove(id));   // gives back trailing blocks on the way down
            alive.Remove(id);
        }
        var extra = Features(1, 64, seed: 10)[0];
        index.Add(9999, extra);   // grows again
        Assert.Equal(alive.Count + 1, index.Count);
        foreach (var id in alive.Take(50)) Assert.Equal(rows[id - 1], index.Get(id));
        Assert.Equal(extra, index.Get(9999));

        var query = Features(1, 64, seed: 9)[0];
        var expected = alive.Select(id => (Id: id, Distance: TensorPrimitives.Distance(rows[id - 1], query)))
            .Append((Id: 9999L, Distance: TensorPrimitives.Distance(extra, query)))
            .OrderBy(p => p.Distance).Take(10).ToArray();
        var hits = index.Search(query, 10, exclude: expected[0].Id);
        Assert.Equal(expected.Skip(1).Select(e => e.Id), hits.Take(9).Select(h => h.Id));
        Assert.DoesNotContain(hits, h => h.Id == expected[0].Id);
    }

    [Theory]
    [MemberData(nameof(EveryStorage))]
    public void ExcludedRowIsLeftOutWhereverItSitsAndTakesNoOtherRowWithIt(VectorStorage storage)
    {
        // 2103 rows: one partition read as four streams of 525 rows and a tail of 3; blocks start at rows 1024 and 2048.
        // Asking for every other row catches both a returned excluded row and a row lost in its place.
        var rows = Features(2103, 64, seed: 11);
        var index = Index(rows, storage);
        var query = Features(1, 64, seed: 12)[0];
        foreach (var row in new[] { 0, 524, 525, 1023, 1024, 1574, 2047, 2048, 2099, 2100, 2102 })
        {
            var excluded = row + 1L;
            var expected = BruteForce(rows, query, rows.Length, excluded);
            var hits = index.Search(query, rows.Length, excluded);
            Assert.Equal(expected.Select(e => e.Id), hits.Select(h => h.Id));
            Assert.Equal(expected.Select(e => e.Distance), hits.Select(h => h.Distance));
        }
    }

    [Fact]
    public void NativeBlocksGrowKeepValuesAndRefuseUseAfterDispose()
    {
        var block = new NativeBlock<float>(1000);
        for (var i = 0; i < 1000; i++) block.Span[i] = i;
        using var grown = block.Grow(5000);
        block.Dispose();
        block.Dispose();   // once only
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (float)i), grown.AsSpan(0, 1000).ToArray());
        Assert.Throws<ObjectDisposedException>(() => block.Span.Length);
        using var empty = new NativeBlock<byte>(0);
        Assert.Equal(0, empty.Span.Length);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(96)]
    [InlineData(100)]
    [InlineData(1000)]
    [InlineData(4096)]
    [InlineData(5000)]
    public void KernelsEqualTheirScalarTwins(int n)
    {
        var rng = new Random(n);
        var q = Gaussians(rng, n, 3);
        // Halves of all kinds: normal, subnormal (below 6.1e-5), zero, negative, the largest.
        var x = Enumerable.Range(0, n).Select(i => (Half)(i % 7 switch
        {
            0 => 0f, 1 => 3e-6f * (float)rng.NextDouble(), 2 => -(float)rng.NextDouble(), 3 => 65504f, _ => 10 * (float)rng.NextDouble(),
        })).ToArray();
        var reference = ScalarTwins.Dot(x, q);
        var scaled = VectorKernels.SplitPairs<float>([.. q.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock);
        var magnitude = ScalarTwins.Dot([.. x.Select(h => (Half)Math.Abs((float)h))], [.. q.Select(Math.Abs)]);
        Assert.Equal(reference, VectorKernels.Dot(x, scaled), magnitude * 1e-6);   // fp32 sums of exact products

        var u = new byte[n];
        rng.NextBytes(u);
        var qi = Enumerable.Range(0, n).Select(i => (short)(i % 3 == 0 ? 32767 : i % 3 == 1 ? -32767 : rng.Next(-32767, 32768))).ToArray();
        Array.Fill(u, (byte)255, 0, n / 2);   // the largest products, where an int32 lane would overflow
        Assert.Equal(ScalarTwins.Dot(u, qi), VectorKernels.Dot(u, VectorKernels.SplitPairs<short>(qi, VectorKernels.ByteBlock)));

        var f = Gaussians(rng, n, 2);
        var squares = ScalarTwins.SquaredDistance(f, q);
        Assert.Equal(squares, VectorKernels.SquaredDistance(f, q), squares * 1e-6);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(33)]
    [InlineData(100)]
    [InlineData(4096)]
    [InlineData(4133)]
    public void FourRowKernelsGiveEachRowItsOneRowResultBitForBit(int n)
    {
        // A scan reads four rows at once and the last rows one at a time: a row's score must not depend on which.
        var rng = new Random(n);
        var rows = Enumerable.Range(0, 4).Select(_ => Gaussians(rng, n, 2)).ToArray();
        var q = Gaussians(rng, n, 2);
        Span<float> d = stackalloc float[4];
        VectorKernels.SquaredDistances(rows[0], rows[1], rows[2], rows[3], q, d);
        for (var r = 0; r < 4; r++) Assert.Equal(VectorKernels.SquaredDistance(rows[r], q), d[r]);

        var halves = rows.Select(x => x.Select(v => (Half)v).ToArray()).ToArray();
        var scaled = VectorKernels.SplitPairs<float>([.. q.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock);
        VectorKernels.Dots(halves[0], halves[1], halves[2], halves[3], scaled, d);
        for (var r = 0; r < 4; r++)
        {
            Assert.Equal(VectorKernels.Dot(halves[r], scaled), d[r]);
            Assert.Equal(ScalarTwins.Dot(halves[r], q), d[r], ScalarTwins.Dot([.. halves[r].Select(h => (Half)Math.Abs((float)h))], [.. q.Select(Math.Abs)]) * 1e-6);
        }

        var bytes = rows.Select(x => x.Select(v => (byte)Math.Clamp(40 * v + 128, 0, 255)).ToArray()).ToArray();
        var qi = q.Select(v => (short)Math.Clamp(5000 * v, -32767, 32767)).ToArray();
        Span<long> dots = stackalloc long[4];
        VectorKernels.Dots(bytes[0], bytes[1], bytes[2], bytes[3], VectorKernels.SplitPairs<short>(qi, VectorKernels.ByteBlock), dots);
        for (var r = 0; r < 4; r++) Assert.Equal(ScalarTwins.Dot(bytes[r], qi), dots[r]);
        Assert.Throws<ArgumentException>(() => VectorKernels.SquaredDistance(rows[0], q.AsSpan(1)));
    }
}
