namespace AlexNet.Search.Tests;

/// <summary>
/// Searches answered together in one pass (<see cref="FeatureIndex.Search(IReadOnlyList{SearchQuery})"/> and
/// <see cref="SearchCoalescer"/>) return exactly what each returns alone: the same ids and the same distances, bit for
/// bit, in every storage, at block and tail boundaries, with excluded rows and a k of its own per query.
/// </summary>
public sealed class SearchTogetherTests
{
    public static TheoryData<VectorStorage> EveryStorage => [VectorStorage.Float32, VectorStorage.Float16, VectorStorage.Int8];

    /// <summary>Every storage at 700 values a row (not a multiple of 16, 32 or 64: every kernel runs its scalar tail, and
    /// two queries go through the one-query kernel twice), at 1024 (the two-query kernels; on AVX2 hosts one segment of
    /// the dimension-blocked kernels) and at 2240 (35 x 64: on AVX2 hosts segments of 1024, 1024 and 192 values in fp32
    /// and fp16, 2048 and 192 in int8, so accumulators are carried across segment boundaries and a last short one), with
    /// two threads; and at 256 (0.79 M values: one partition, so the pass splits its queries between the two threads) and
    /// 700 with four threads (two partitions, each read by two groups of queries).</summary>
    public static TheoryData<VectorStorage, int, int> EveryStorageAndShape => new()
    {
        { VectorStorage.Float32, 700, 2 }, { VectorStorage.Float16, 700, 2 }, { VectorStorage.Int8, 700, 2 },
        { VectorStorage.Float32, 1024, 2 }, { VectorStorage.Float16, 1024, 2 }, { VectorStorage.Int8, 1024, 2 },
        { VectorStorage.Float32, 2240, 2 }, { VectorStorage.Float16, 2240, 2 }, { VectorStorage.Int8, 2240, 2 },
        { VectorStorage.Float32, 256, 2 }, { VectorStorage.Float16, 256, 2 }, { VectorStorage.Int8, 256, 2 },
        { VectorStorage.Float32, 700, 4 }, { VectorStorage.Int8, 700, 4 },
    };

    // 3077 rows: three full blocks of 1024 and 5 rows in a fourth. At 700 values 2.15 M values: two partitions with two
    // threads (three at 1024), each ending in rows that the scan reads one by one (the "tail" after its four streams).
    const int Rows = 3 * FeatureIndex.BlockRows + 5, Dim = 700;

    static readonly Lazy<float[][]> s_rows = new(() => Features(Rows, Dim, seed: 11));
    static readonly Lazy<float[][]> s_rows1024 = new(() => Features(Rows, 1024, seed: 13));
    static readonly Lazy<float[][]> s_rows2240 = new(() => Features(Rows, 2240, seed: 17));
    static readonly Lazy<float[][]> s_rows256 = new(() => Features(Rows, 256, seed: 19));

    /// <summary>Post-ReLU vectors around a few centres, like FC7 features, with some rows repeated (ties).</summary>
    static float[][] Features(int count, int dim, int seed)
    {
        var rng = new Random(seed);
        var centres = Enumerable.Range(0, 40).Select(_ => Noise(rng, dim)).ToArray();
        var rows = new float[count][];
        for (var i = 0; i < count; i++)
            rows[i] = i % 97 == 50 && i > 100 ? rows[i - 97] : [.. centres[rng.Next(centres.Length)].Zip(Noise(rng, dim), (c, n) => MathF.Max(0, c + 0.6f * n))];
        return rows;
    }

    static float[] Noise(Random rng, int n) => [.. Enumerable.Range(0, n).Select(_ => 2 * (rng.NextSingle() + rng.NextSingle() + rng.NextSingle() - 1.5f))];

    static FeatureIndex Index(VectorStorage storage, float[][]? rows = null, int threads = 2)
    {
        rows ??= s_rows.Value;
        var index = new FeatureIndex(rows[0].Length, storage, rerankFactor: 10, threads: threads);
        for (var i = 0; i < rows.Length; i++) index.Add(i + 1, rows[i]);
        return index;
    }

    /// <summary>Queries at the edges: rows at block boundaries (1024, 1025, 2048, 2049), the last rows of each
    /// partition's four streams and tails (1536-1538, 3076, 3077), fresh vectors; each excluding a row there or
    /// nothing, with k from 1 to every row.</summary>
    static SearchQuery[] EdgeQueries(float[][]? rows = null)
    {
        rows ??= s_rows.Value;
        var dim = rows[0].Length;
        var rng = new Random(12);
        long[] edges = [1, 1024, 1025, 1536, 1537, 1538, 1539, 2048, 2049, 3072, 3073, 3076, 3077];
        int[] ks = [1, 3, 10, 25, 7, Rows, 2, 10, 1, 40, 5, 10, Rows - 1];
        var queries = new List<SearchQuery>();
        for (var i = 0; i < edges.Length; i++)
        {
            queries.Add(new SearchQuery(rows[edges[i] - 1], ks[i], Exclude: edges[i]));            // itself left out
            queries.Add(new SearchQuery(Noise(rng, dim).Select(MathF.Abs).ToArray(), ks[(i + 3) % ks.Length], Exclude: edges[(i + 5) % edges.Length]));
        }
        queries.Add(new SearchQuery(rows[1023], 10));                         // not excluded: it finds itself at 0
        queries.Add(new SearchQuery(rows[150], 12, Exclude: 999_999));       // an id that is not there
        queries.Add(new SearchQuery(rows[150], 0));                           // k = 0: nothing
        return [.. queries];
    }

    /// <summary>A search on a thread of its own (callers block while they wait: pool threads would trickle in).</summary>
    static Task<Neighbour[]> Start(Func<Neighbour[]> search) => Task.Factory.StartNew(search, CancellationToken.None,
        TaskCreationOptions.LongRunning, TaskScheduler.Default);

    static void AssertSame(Neighbour[] alone, Neighbour[] together, string what)
    {
        Assert.True(alone.Length == together.Length, $"{what}: {together.Length} neighbours together, {alone.Length} alone.");
        for (var i = 0; i < alone.Length; i++)
        {
            Assert.True(alone[i].Id == together[i].Id, $"{what}: neighbour {i} is {together[i].Id} together, {alone[i].Id} alone.");
            Assert.True(BitConverter.SingleToInt32Bits(alone[i].Distance) == BitConverter.SingleToInt32Bits(together[i].Distance),
                $"{what}: neighbour {i}'s distance is {together[i].Distance:R} together, {alone[i].Distance:R} alone.");
        }
    }

    [Theory]
    [MemberData(nameof(EveryStorageAndShape))]
    public void OnePassEqualsEachSearchAloneAtBlockAndTailBoundaries(VectorStorage storage, int dim, int threads)
    {
        var rows = dim switch { Dim => s_rows.Value, 1024 => s_rows1024.Value, 256 => s_rows256.Value, _ => s_rows2240.Value };
        var index = Index(storage, rows, threads);
        var queries = EdgeQueries(rows);
        var together = index.Search(queries);
        Assert.Equal(queries.Length, together.Length);
        for (var j = 0; j < queries.Length; j++)
        {
            var alone = index.Search(queries[j].Vector, queries[j].K, queries[j].Exclude);
            AssertSame(alone, together[j], $"{storage} {dim}-d {threads} threads query {j} (k {queries[j].K}, exclude {queries[j].Exclude})");
            if (queries[j].Exclude is { } e) Assert.DoesNotContain(together[j], h => h.Id == e);
        }
        Assert.Equal(Rows - 1, together[Array.FindIndex(queries, q => q.K == Rows)].Length);   // every row but the excluded one
        Assert.Equal(1024L, together[^3][0].Id);
        Assert.Empty(together[^1]);
    }

    [Theory]
    [MemberData(nameof(EveryStorage))]
    public async Task SearchesThatArriveWhileAPassRunsShareTheNextPassAndEachGetsItsOwnAnswer(VectorStorage storage)
    {
        var index = Index(storage);
        var queries = EdgeQueries()[..12];
        var coalescer = new SearchCoalescer(maxGroup: 16) { AloneBelowBytes = 0 };   // 3,077 rows: small, through passes all the same
        using var release = new ManualResetEventSlim();
        var groups = new List<int>();
        coalescer.PassStarting = n =>
        {
            lock (groups) groups.Add(n);
            if (groups.Count == 1) release.Wait();   // the first pass waits until the others have queued behind it
        };
        var answers = new Neighbour[queries.Length][];
        var first = Start(() => answers[0] = coalescer.Search(index, queries[0].Vector, queries[0].K, queries[0].Exclude));
        SpinWait.SpinUntil(() => groups.Count == 1);
        var rest = Enumerable.Range(1, queries.Length - 1)
            .Select(j => Start(() => answers[j] = coalescer.Search(index, queries[j].Vector, queries[j].K, queries[j].Exclude))).ToArray();
        Assert.True(SpinWait.SpinUntil(() => coalescer.Queued == queries.Length - 1, TimeSpan.FromSeconds(30)), "the searches did not queue");
        release.Set();
        await Task.WhenAll([first, .. rest]);

        Assert.Equal([1, queries.Length - 1], groups);   // the eleven that arrived during the first pass: one pass
        Assert.Equal(2, coalescer.Passes);
        for (var j = 0; j < queries.Length; j++)
            AssertSame(index.Search(queries[j].Vector, queries[j].K, queries[j].Exclude), answers[j], $"{storage} query {j}");
    }

    [Theory]
    [InlineData(32)]
    [InlineData(64)]
    [InlineData(4096)]
    [InlineData(96)]
    [InlineData(700)]
    public void TwoQueryKernelsEqualTheOneQueryKernelsBitForBit(int n)
    {
        var rng = new Random(n);
        float[] Floats() => [.. Enumerable.Range(0, n).Select(_ => rng.Next(10) == 0 ? -0f : 4 * (rng.NextSingle() - 0.5f))];
        var rows = Enumerable.Range(0, 4).Select(_ => Floats()).ToArray();
        var (q, r) = (Floats(), Floats());
        float[] d = new float[4], e = new float[4], dq = new float[4], dr = new float[4];
        VectorKernels.SquaredDistances(rows[0], rows[1], rows[2], rows[3], q, r, d, e);
        VectorKernels.SquaredDistances(rows[0], rows[1], rows[2], rows[3], q, dq);
        VectorKernels.SquaredDistances(rows[0], rows[1], rows[2], rows[3], r, dr);
        Assert.Equal(dq.Select(BitConverter.SingleToInt32Bits), d.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(dr.Select(BitConverter.SingleToInt32Bits), e.Select(BitConverter.SingleToInt32Bits));

        var halves = rows.Select(x => x.Select(v => (Half)v).ToArray()).ToArray();
        var (hq, hr) = (VectorKernels.SplitPairs<float>([.. q.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock),
            VectorKernels.SplitPairs<float>([.. r.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock));
        VectorKernels.Dots(halves[0], halves[1], halves[2], halves[3], hq, hr, d, e);
        VectorKernels.Dots(halves[0], halves[1], halves[2], halves[3], hq, dq);
        VectorKernels.Dots(halves[0], halves[1], halves[2], halves[3], hr, dr);
        Assert.Equal(dq.Select(BitConverter.SingleToInt32Bits), d.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(dr.Select(BitConverter.SingleToInt32Bits), e.Select(BitConverter.SingleToInt32Bits));

        var bytes = rows.Select(x => x.Select(v => (byte)(v * 60 + 128)).ToArray()).ToArray();
        var (iq, ir) = (VectorKernels.SplitPairs<short>([.. q.Select(v => (short)(v * 16000))], VectorKernels.ByteBlock),
            VectorKernels.SplitPairs<short>([.. r.Select(v => (short)(v * -16000))], VectorKernels.ByteBlock));
        long[] l = new long[4], m = new long[4], lq = new long[4], lr = new long[4];
        VectorKernels.Dots(bytes[0], bytes[1], bytes[2], bytes[3], iq, ir, l, m);
        VectorKernels.Dots(bytes[0], bytes[1], bytes[2], bytes[3], iq, lq);
        VectorKernels.Dots(bytes[0], bytes[1], bytes[2], bytes[3], ir, lr);
        Assert.Equal(lq, l);
        Assert.Equal(lr, m);

        // One row against four queries (the AVX2 hosts' form): each result equals the one-query kernel's for that row.
        var (q3, q4) = (Floats(), Floats());
        var four = new float[4];
        var fourLong = new long[4];
        var quads = 0;
        for (var row = 0; row < 4; row++)
        {
            if (VectorKernels.TrySquaredDistances(rows[row], q, r, q3, q4, four))
            {
                quads++;
                foreach (var (query, j) in new[] { q, r, q3, q4 }.Select((v, j) => (v, j)))
                    Assert.Equal(BitConverter.SingleToInt32Bits(VectorKernels.SquaredDistance(rows[row], query)), BitConverter.SingleToInt32Bits(four[j]));
            }
            var (h3, h4) = (VectorKernels.SplitPairs<float>([.. q3.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock),
                VectorKernels.SplitPairs<float>([.. q4.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock));
            if (VectorKernels.TryDots(halves[row], hq, hr, h3, h4, four))
            {
                quads++;
                foreach (var (query, j) in new[] { hq, hr, h3, h4 }.Select((v, j) => (v, j)))
                    Assert.Equal(BitConverter.SingleToInt32Bits(VectorKernels.Dot(halves[row], query)), BitConverter.SingleToInt32Bits(four[j]));
            }
            var (i3, i4) = (VectorKernels.SplitPairs<short>([.. q3.Select(v => (short)(v * 8000))], VectorKernels.ByteBlock),
                VectorKernels.SplitPairs<short>([.. q4.Select(v => (short)(v * -8000))], VectorKernels.ByteBlock));
            if (VectorKernels.TryDots(bytes[row], iq, ir, i3, i4, fourLong))
            {
                quads++;
                foreach (var (query, j) in new[] { iq, ir, i3, i4 }.Select((v, j) => (v, j)))
                    Assert.Equal(VectorKernels.Dot(bytes[row], query), fourLong[j]);
            }
        }
        // Lengths of whole steps use a shared-row form on every host: the four-query one without AVX-512.
        if (n % 64 == 0 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated) Assert.Equal(12, quads);
    }

    /// <summary>The dimension-blocked four-query kernels (VectorKernels.Segments.cs), called a segment at a time with
    /// the state carried, give each (row, query) the one-query kernel's result bit for bit, whatever the segments:
    /// one step each, uneven ones, one for the whole row, the scan's own (<see cref="VectorKernels.SegmentQueryBytes"/>)
    /// with a short last one. They run where the one-query kernels take their Vector256 paths (AVX2 without AVX-512;
    /// tools/KernelCheck checks them with AVX-512 switched off on other hosts).</summary>
    [Theory]
    [InlineData(64)]
    [InlineData(1088)]
    [InlineData(2240)]
    [InlineData(4096)]
    public void SegmentedKernelsEqualTheOneQueryKernelsAcrossSegmentBoundaries(int n)
    {
        var avx2Path = !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Avx2.IsSupported;
        Assert.Equal(avx2Path, VectorKernels.SegmentsFor(n, 4));
        Assert.Equal(avx2Path, VectorKernels.SegmentsFor(n, 2));
        Assert.Equal(avx2Path || (System.Runtime.Intrinsics.X86.Avx2.IsSupported && !System.Runtime.Intrinsics.X86.Avx512BW.IsSupported), VectorKernels.SegmentsFor(n, 1));
        Assert.False(VectorKernels.SegmentsFor(n + 8, 4));   // a tail: the one-query kernels' path instead
        if (!avx2Path) return;   // AVX-512 hosts: KernelPathsTests runs tools/KernelCheck's segment checks on this path

        var rng = new Random(n);
        float[] Floats() => [.. Enumerable.Range(0, n).Select(_ => rng.Next(10) == 0 ? -0f : 4 * (rng.NextSingle() - 0.5f))];
        var rows = Enumerable.Range(0, 3).Select(_ => Floats()).Append(new float[n]).ToArray();   // and a row of zeros (-0 sums)
        var queries = Enumerable.Range(0, 4).Select(_ => Floats()).ToArray();
        var halves = rows.Select(x => x.Select(v => (Half)v).ToArray()).ToArray();
        var scaled = queries.Select(q => VectorKernels.SplitPairs<float>([.. q.Select(v => v * VectorKernels.HalfQueryScale)], VectorKernels.HalfBlock)).ToArray();
        var bytes = rows.Select((x, r) => x.Select(v => r == 3 ? (byte)255 : (byte)(v * 60 + 128)).ToArray()).ToArray();   // 255s: the largest products
        var shorts = queries.Select((q, j) => VectorKernels.SplitPairs<short>([.. q.Select(v => j == 0 ? (short)32767 : (short)(v * 8000))], VectorKernels.ByteBlock)).ToArray();

        foreach (var bytesPerValue in new[] { 4, 2, 1 })
        {
            var step = VectorKernels.SegmentStep(bytesPerValue);
            var scan = VectorKernels.SegmentQueryBytes / (bytesPerValue == 1 ? 2 : 4) / step * step;
            int[][] splits =
            [
                [0, n],                                                                      // the whole row
                [.. Enumerable.Range(0, n / step + 1).Select(i => i * step)],                // one step a segment
                [.. Enumerable.Range(0, (n + scan - 1) / scan).Select(i => i * scan).Append(n)],   // the scan's segments
                [0, step, step, 3 * step < n ? 3 * step : n, n],                             // uneven, with an empty one
            ];
            foreach (var bounds in splits)
                for (var r = 0; r < 4; r++)
                {
                    var state = new System.Runtime.Intrinsics.Vector256<float>[VectorKernels.SegmentState];
                    for (var b = 0; b + 1 < bounds.Length; b++)
                    {
                        var (from, to) = (bounds[b], bounds[b + 1]);
                        if (bytesPerValue == 4) VectorKernels.SquaredDistancesSegment(rows[r], queries[0], queries[1], queries[2], queries[3], from, to, state);
                        else if (bytesPerValue == 2) VectorKernels.DotsSegment(halves[r], scaled[0], scaled[1], scaled[2], scaled[3], from, to, state);
                        else VectorKernels.DotsSegment(bytes[r], shorts[0], shorts[1], shorts[2], shorts[3], from, to, state);
                    }
                    var what = $"{bytesPerValue}-byte rows of {n}, row {r}, segments at {string.Join(",", bounds)}";
                    if (bytesPerValue == 1)
                    {
                        var results = new long[4];
                        VectorKernels.DotsFinish(state, results);
                        for (var j = 0; j < 4; j++) Assert.True(VectorKernels.Dot(bytes[r], shorts[j]) == results[j], $"{what}, query {j}");
                    }
                    else
                    {
                        var results = new float[4];
                        if (bytesPerValue == 4) VectorKernels.SquaredDistancesFinish(state, results);
                        else VectorKernels.DotsFinish(state, results);
                        for (var j = 0; j < 4; j++)
                        {
                            var alone = bytesPerValue == 4 ? VectorKernels.SquaredDistance(rows[r], queries[j]) : VectorKernels.Dot(halves[r], scaled[j]);
                            Assert.True(BitConverter.SingleToInt32Bits(alone) == BitConverter.SingleToInt32Bits(results[j]),
                                $"{what}, query {j}: {results[j]:R} in segments, {alone:R} alone");
                        }
                    }
                }
        }
    }

    [Fact]
    public void ASegmentOffTheKernelsStepIsRefused()
    {
        var (x, q) = (new float[64], new float[64]);
        var state = new System.Runtime.Intrinsics.Vector256<float>[VectorKernels.SegmentState];
        var refused = Assert.Throws<ArgumentException>(() => VectorKernels.SquaredDistancesSegment(x, q, q, q, q, 0, 24, state));
        Assert.Contains("multiples of 16", refused.Message);
        Assert.Throws<ArgumentException>(() => VectorKernels.DotsSegment(new Half[64], q, q, q, q, 16, 64, state));
        Assert.Throws<ArgumentException>(() => VectorKernels.DotsSegment(new byte[128], new short[128], new short[128], new short[128], new short[128], 0, 192, state));
        Assert.Throws<ArgumentException>(() => VectorKernels.SquaredDistancesSegment(x, q, q, q, new float[48], 0, 16, state));
        Assert.Throws<ArgumentException>(() => VectorKernels.SquaredDistancesSegment(x, q, q, q, q, 0, 16, state[..4]));
    }

    [Fact]
    public async Task AGroupStopsAtMaxGroupAndTheRestGoInTheNextPasses()
    {
        var index = Index(VectorStorage.Int8);
        var queries = EdgeQueries()[..11];
        var coalescer = new SearchCoalescer(maxGroup: 4) { AloneBelowBytes = 0 };
        using var release = new ManualResetEventSlim();
        var groups = new List<int>();
        coalescer.PassStarting = n =>
        {
            lock (groups) groups.Add(n);
            if (groups.Count == 1) release.Wait();
        };
        var answers = new Neighbour[queries.Length][];
        var tasks = new List<Task> { Start(() => answers[0] = coalescer.Search(index, queries[0].Vector, queries[0].K, queries[0].Exclude)) };
        SpinWait.SpinUntil(() => groups.Count == 1);
        for (var j = 1; j < queries.Length; j++)
        {
            var i = j;
            tasks.Add(Start(() => answers[i] = coalescer.Search(index, queries[i].Vector, queries[i].K, queries[i].Exclude)));
            Assert.True(SpinWait.SpinUntil(() => coalescer.Queued == i, TimeSpan.FromSeconds(30)));   // in this order
        }
        release.Set();
        await Task.WhenAll(tasks);
        Assert.Equal([1, 4, 4, 2], groups);
        Assert.Equal(4, coalescer.LargestGroup);
        for (var j = 0; j < queries.Length; j++)
            AssertSame(index.Search(queries[j].Vector, queries[j].K, queries[j].Exclude), answers[j], $"query {j}");
    }

    [Fact]
    public async Task ACancelledSearchLeavesTheQueueAndTheOthersGetTheirAnswers()
    {
        var index = Index(VectorStorage.Float16);
        var queries = EdgeQueries()[..5];
        var coalescer = new SearchCoalescer { AloneBelowBytes = 0 };
        using var release = new ManualResetEventSlim();
        var groups = new List<int>();
        coalescer.PassStarting = n =>
        {
            lock (groups) groups.Add(n);
            if (groups.Count == 1) release.Wait();
        };
        using var cancel = new CancellationTokenSource();
        var answers = new Neighbour[queries.Length][];
        var tasks = new List<Task> { Start(() => answers[0] = coalescer.Search(index, queries[0].Vector, queries[0].K, queries[0].Exclude)) };
        SpinWait.SpinUntil(() => groups.Count == 1);
        for (var j = 1; j < queries.Length; j++)
        {
            var i = j;
            // Query 1 is the oldest waiting: the one that would run the next pass.
            tasks.Add(Start(() => answers[i] = coalescer.Search(index, queries[i].Vector, queries[i].K, queries[i].Exclude, i == 1 ? cancel.Token : default)));
            Assert.True(SpinWait.SpinUntil(() => coalescer.Queued == i, TimeSpan.FromSeconds(30)));
        }
        cancel.Cancel();
        await Assert.ThrowsAsync<OperationCanceledException>(() => tasks[1]);
        Assert.Equal(queries.Length - 2, coalescer.Queued);
        release.Set();
        await Task.WhenAll([tasks[0], .. tasks[2..]]);
        Assert.Equal([1, queries.Length - 2], groups);
        Assert.Null(answers[1]);
        foreach (var j in new[] { 0, 2, 3, 4 })
            AssertSame(index.Search(queries[j].Vector, queries[j].K, queries[j].Exclude), answers[j], $"query {j}");
    }

    /// <summary>An index below <see cref="SearchCoalescer.AloneBelowBytes"/> is searched at once, never behind a pass
    /// (held open here); at the threshold its searches queue for passes like any other.</summary>
    [Fact]
    public async Task SearchesOfASmallIndexRunAtOnceAndAtTheThresholdTheyQueue()
    {
        var big = Index(VectorStorage.Float32);
        var rows = s_rows.Value[..64];
        var small = Index(VectorStorage.Float32, rows);
        Assert.Equal(64L * Dim * sizeof(float), small.ScanBytes);
        Assert.Equal((long)Rows * Dim * sizeof(float), big.ScanBytes);
        foreach (var threshold in new[] { small.ScanBytes + 1, small.ScanBytes })
        {
            var coalescer = new SearchCoalescer(maxGroup: 4) { AloneBelowBytes = threshold };
            using var entered = new ManualResetEventSlim();
            using var release = new ManualResetEventSlim();
            coalescer.PassStarting = _ =>
            {
                entered.Set();
                release.Wait();
            };
            var held = Start(() => coalescer.Search(big, rows[1], 5));   // a pass of the big index, held open
            Assert.True(entered.Wait(TimeSpan.FromSeconds(10)), "the big index's pass did not start");
            var search = Start(() => coalescer.Search(small, rows[7], 3, exclude: 8));
            if (threshold > small.ScanBytes)
                AssertSame(small.Search(rows[7], 3, 8), await search.WaitAsync(TimeSpan.FromSeconds(10)), "the small index alone");
            else
                Assert.True(SpinWait.SpinUntil(() => coalescer.Queued == 1, TimeSpan.FromSeconds(10)), "the search did not queue behind the pass");
            release.Set();
            AssertSame(big.Search(rows[1], 5), await held, "the big index's search");
            AssertSame(small.Search(rows[7], 3, 8), await search, "the small index's search");
            Assert.Equal(threshold > small.ScanBytes ? 1 : 2, coalescer.Passes);
        }
    }

    /// <summary>A clock that moves on by <paramref name="step"/> each time it is read: as if the thread were preempted
    /// between any two reads.</summary>
    sealed class SteppingClock(TimeSpan step) : TimeProvider
    {
        DateTimeOffset _now = DateTimeOffset.UnixEpoch;
        readonly Lock _gate = new();
        public override DateTimeOffset GetUtcNow() { lock (_gate) return _now += step; }
    }

    /// <summary>A delay that runs out between the pass's check of the clock and its wait ends the wait. It once computed
    /// the wait's timeout after the check, from a second read of the clock: a thread preempted there (seen in a benchmark
    /// on a loaded host) got a negative timeout, -1 ms waited for ever (until MaxGroup searches queued) and less threw
    /// ArgumentOutOfRangeException, which failed that search and left the coalescer "running" with no pass, so every
    /// later search waited for ever.</summary>
    [Theory]
    [InlineData(3)]   // reads at 3, 6, 9 ms: deadline 3 + 5 = 8, the check reads 6, the timeout was 8 - 9 = -1 ms (infinite)
    [InlineData(4)]   // reads at 4, 8, 12 ms: deadline 9, the check reads 8, the timeout was 9 - 12 = -3 ms (thrown)
    public async Task ADelayThatRunsOutWhileThePassChecksTheClockEndsTheWait(int stepMs)
    {
        var rows = s_rows.Value[..64];
        var index = Index(VectorStorage.Float32, rows);
        var coalescer = new SearchCoalescer(maxGroup: 4, delay: TimeSpan.FromMilliseconds(5))
        {
            Clock = new SteppingClock(TimeSpan.FromMilliseconds(stepMs)),
            AloneBelowBytes = 0,   // 64 rows: through passes all the same
        };
        var first = Start(() => coalescer.Search(index, rows[5], 3));
        AssertSame(index.Search(rows[5], 3), await first.WaitAsync(TimeSpan.FromSeconds(10)), "the first search");
        var next = Start(() => coalescer.Search(index, rows[6], 3));   // the coalescer still runs passes
        AssertSame(index.Search(rows[6], 3), await next.WaitAsync(TimeSpan.FromSeconds(10)), "the next search");
        Assert.Equal(2, coalescer.Passes);
    }

    [Fact]
    public async Task APositiveDelayWaitsForCompanyAndSearchesOfAnotherIndexGetTheirOwnPass()
    {
        var old = Index(VectorStorage.Float32);
        var replaced = Index(VectorStorage.Float32, [.. s_rows.Value.Reverse()]);   // as after a reload: other ids
        var queries = EdgeQueries()[..6];
        // A long delay that three searches for the same index cut short: a pass starts once it has MaxGroup of them.
        var coalescer = new SearchCoalescer(maxGroup: 3, delay: TimeSpan.FromMinutes(5)) { AloneBelowBytes = 0 };
        var groups = new List<int>();
        coalescer.PassStarting = n => { lock (groups) groups.Add(n); };
        var answers = new Neighbour[queries.Length][];
        FeatureIndex IndexOf(int j) => j % 2 == 0 ? old : replaced;
        var tasks = Enumerable.Range(0, queries.Length)
            .Select(j => Start(() => answers[j] = coalescer.Search(IndexOf(j), queries[j].Vector, queries[j].K, queries[j].Exclude))).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromMinutes(1));   // a TimeoutException: a pass waited out its delay with a full group queued
        Assert.Equal([3, 3], groups);
        for (var j = 0; j < queries.Length; j++)
            AssertSame(IndexOf(j).Search(queries[j].Vector, queries[j].K, queries[j].Exclude), answers[j], $"query {j}");
    }
}
