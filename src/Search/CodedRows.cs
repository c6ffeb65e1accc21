using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using AlexNet.Search.Codecs;

namespace AlexNet.Search;

/// <summary>The rows of a <see cref="FeatureIndex"/>: its fp32 vectors and what its storage scans. The index calls
/// this once per change or search; each storage's <see cref="CodedRows{TCodec, TCode}"/> does the work.</summary>
abstract class CodedRows
{
    /// <summary>The one place that picks a codec for a storage.</summary>
    public static CodedRows For(VectorStorage storage, int dim) => storage switch
    {
        VectorStorage.Float32 => new CodedRows<Float32Codec, float>(dim),
        VectorStorage.Float16 => new CodedRows<Float16Codec, Half>(dim),
        VectorStorage.Int8 => new CodedRows<Int8Codec, byte>(dim),
        _ => throw new ArgumentOutOfRangeException(nameof(storage)),
    };

    public abstract long ScanBytesPerRow { get; }
    public abstract int BlockCount { get; }

    /// <summary>The fp32 vector of a row, whatever the storage.</summary>
    public abstract Span<float> Exact(int row);

    /// <summary>Stores <paramref name="vector"/> as row <paramref name="row"/> (the next one), making room for it.</summary>
    public abstract void Write(int row, ReadOnlySpan<float> vector);

    public abstract void Move(int from, int to);
    public abstract void DropLastBlock();

    /// <summary>Rows [0, count) except <paramref name="skip"/> (-1 for none): at most a short list of the nearest, by
    /// their exact distance, nearest first (the caller keeps <paramref name="take"/>).</summary>
    public abstract Candidate[] Search(ReadOnlySpan<float> query, int count, int skip, int take, int rerankFactor, int threads);

    /// <summary>Several searches in one pass over the rows: answer j equals <see cref="Search"/>'s for query j, bit for bit.</summary>
    public abstract Candidate[][] SearchMany(IReadOnlyList<RowQuery> queries, int count, int rerankFactor, int threads);
}

/// <summary>One query of a pass over the rows: leave out row <see cref="Skip"/> (-1 for none), keep <see cref="Take"/>.</summary>
readonly record struct RowQuery(float[] Query, int Skip, int Take);

/// <summary>
/// One storage's rows and scan (faiss's <c>IndexFlatCodes</c> with its <c>DistanceComputer</c>): the scan loop is
/// generic over the codec struct, so the JIT compiles it once per storage with the codec's kernel call inlined (a
/// shared per-step helper with a switch on the storage had made the fp16 scan about a quarter slower).
/// <para>A search splits the rows into contiguous partitions (four per thread), scanned in parallel, each keeping its
/// own top list; the lists are merged and re-ranked exactly (<see cref="Rerank"/>).</para>
/// </summary>
sealed class CodedRows<TCodec, TCode> : CodedRows where TCodec : struct, IRowCodec<TCodec, TCode> where TCode : unmanaged
{
    /// <summary>Below this many scanned values a search stays on the calling thread (fork/join costs ~10 us).</summary>
    const long ValuesPerPartition = 1 << 20;
    const int PartitionsPerThread = 4;

    readonly int _dim;
    readonly RowBlocks<float> _exact;       // (rows, dim) fp32: scanned in Float32, re-ranked from otherwise
    readonly RowBlocks<TCode> _codes;       // (rows, dim) codes: the same blocks as _exact when the codec scans those
    readonly RowBlocks<float>? _parameters; // (rows, ParametersPerRow), or none

    public CodedRows(int dim)
    {
        _dim = dim;
        _exact = new(dim);
        _codes = TCodec.ScansExactRows ? (RowBlocks<TCode>)(object)_exact : new(dim);
        _parameters = TCodec.ParametersPerRow > 0 ? new(TCodec.ParametersPerRow) : null;
    }

    public override long ScanBytesPerRow => TCodec.ScanBytesPerRow(_dim);
    public override int BlockCount => _exact.BlockCount;
    public override Span<float> Exact(int row) => _exact.Row(row);

    public override void Write(int row, ReadOnlySpan<float> vector)
    {
        _exact.Reserve(row);
        vector.CopyTo(_exact.Row(row));
        if (TCodec.ScansExactRows) return;
        _codes.Reserve(row);
        _parameters?.Reserve(row);
        TCodec.Encode(vector, _codes.Row(row), _parameters is null ? default : _parameters.Row(row));
    }

    public override void Move(int from, int to)
    {
        _exact.Move(from, to);
        if (TCodec.ScansExactRows) return;
        _codes.Move(from, to);
        _parameters?.Move(from, to);
    }

    public override void DropLastBlock()
    {
        _exact.DropLast();
        if (TCodec.ScansExactRows) return;
        _codes.DropLast();
        _parameters?.DropLast();
    }

    public override Candidate[] Search(ReadOnlySpan<float> query, int count, int skip, int take, int rerankFactor, int threads)
    {
        // An fp32 scan sums in another order than TensorPrimitives.Distance, so it keeps 2k for the exact re-rank (a
        // swap needs k rows within fp32 rounding of each other); a compact storage RerankFactor x k.
        var shortlist = (int)Math.Min(count, (long)take * (TCodec.ScansExactRows ? 2 : rerankFactor));
        var buffers = QueryBuffers.ForThisThread;
        var values = buffers.Values(query);
        var q = TCodec.Prepare(query, values, buffers);
        // Four partitions a thread, taken by the workers as they come free: a core that another tenant slows down
        // takes fewer of them instead of finishing last.
        var partitions = (int)Math.Clamp((long)count * _dim / ValuesPerPartition, 1, PartitionsPerThread * threads);
        Candidate[] candidates;
        if (partitions == 1) candidates = Scan(q, 0, count, skip, shortlist);
        else
        {
            var parts = new Candidate[partitions][];
            Parallel.For(0, partitions, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(partitions, threads) },
                p => parts[p] = Scan(q, (int)((long)count * p / partitions), (int)((long)count * (p + 1) / partitions), skip, shortlist));
            candidates = [.. parts.SelectMany(c => c)];
        }
        Array.Sort(candidates);
        candidates = candidates[..Math.Min(candidates.Length, shortlist)];
        var result = Rerank.Exact(candidates, _exact, values.Span, query, take, squaredFirst: !TCodec.ScansExactRows);
        GC.KeepAlive(this);   // the blocks' finalizers must not run while spans into them are read
        return result;
    }

    /// <summary>
    /// <see cref="Search"/> for several queries in one pass: the same partitions, each read once for all the queries.
    /// A partition goes by in chunks of four-row steps that fit in a core's L2 cache together with the queries; each
    /// query's kernel runs over a chunk in turn (the first brings it from memory, the others read it from cache: a
    /// small matrix product of the chunk's rows with the queries), then each query offers the chunk's rows to its own
    /// top list, with its own skip. Where the host runs the AVX2 kernels, four queries at a time go through a chunk a
    /// segment of the dimensions at a time (<see cref="Segments"/>), so their segments stay in L1 while the rows' come
    /// from L2. A row's kernel result is the same number whichever rows share its call and however its dimensions are
    /// cut (see <see cref="VectorKernels"/>), and a top list keeps the best by (distance, row) whatever the order rows come in,
    /// so each query's candidates, short list and re-rank are those of its search alone, bit for bit.
    /// </summary>
    public override Candidate[][] SearchMany(IReadOnlyList<RowQuery> queries, int count, int rerankFactor, int threads)
    {
        var n = queries.Count;
        var buffers = QueryBuffers.Many(n);
        var qs = new TCodec[n];
        var values = new Aligned<float>[n];
        var shortlists = new int[n];
        var skips = new int[n];
        for (var j = 0; j < n; j++)
        {
            var query = queries[j];
            shortlists[j] = (int)Math.Min(count, (long)query.Take * (TCodec.ScansExactRows ? 2 : rerankFactor));
            skips[j] = query.Skip;
            values[j] = buffers[j].Values(query.Query);
            qs[j] = TCodec.Prepare(query.Query, values[j], buffers[j]);
        }
        var partitions = (int)Math.Clamp((long)count * _dim / ValuesPerPartition, 1, PartitionsPerThread * threads);
        // An index too small for a partition a thread is split by queries as well: each group of queries reads all the
        // rows (which fit in cache), so a pass uses the cores that its searches alone would have (one pass of four at
        // N = 3,000 x 256 ran on one core of two: 404 queries/s against 1,109 alone).
        var groups = Math.Clamp(threads / partitions, 1, n);
        var parts = new Candidate[partitions][][];
        for (var p = 0; p < partitions; p++) parts[p] = new Candidate[n][];
        void ScanPart(int w)   // partition w / groups, query group w % groups
        {
            var (p, g) = (w / groups, w % groups);
            var (lo, hi) = (n * g / groups, n * (g + 1) / groups);
            ScanMany(qs[lo..hi], (int)((long)count * p / partitions), (int)((long)count * (p + 1) / partitions), skips[lo..hi], shortlists[lo..hi])
                .CopyTo(parts[p], lo);
        }
        if (partitions * groups == 1) ScanPart(0);
        else Parallel.For(0, partitions * groups, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(partitions * groups, threads) }, ScanPart);
        var results = new Candidate[n][];
        // The re-ranks read rows anywhere in memory, each query's own: in parallel too.
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = threads }, j =>
        {
            Candidate[] candidates = [.. parts.SelectMany(part => part[j])];
            Array.Sort(candidates);
            candidates = candidates[..Math.Min(candidates.Length, shortlists[j])];
            results[j] = Rerank.Exact(candidates, _exact, values[j].Span, queries[j].Query, queries[j].Take, squaredFirst: !TCodec.ScansExactRows);
        });
        GC.KeepAlive(this);
        GC.KeepAlive(buffers);
        return results;
    }

    /// <summary><see cref="Scan"/> for several queries: rows [from, to), query j leaving out skips[j] and keeping its
    /// keeps[j] best. Each query's kernel reads a few steps' rows before the next steps are read, while the results
    /// are offered in <see cref="Scan"/>'s order and chunks: each query's top list sees the same rows in the same order
    /// as in its search alone.</summary>
    Candidate[][] ScanMany(TCodec[] qs, int from, int to, int[] skips, int[] keeps)
    {
        const int Chunk = 256;   // as in Scan
        var n = qs.Length;
        // Steps of four rows read by every query in turn: about 256 KB of rows, which stay in L2 (512 KB a core on
        // Zen 3, 1 MB on Zen 4) while the queries' kernels read them.
        var reuse = (int)Math.Clamp((256 << 10) / (4 * TCodec.ScanBytesPerRow(_dim)), 1, Chunk);
        var best = new TopList[n];
        for (var j = 0; j < n; j++) best[j] = new TopList(keeps[j]);
        var quarter = (to - from) / 4;
        var raw = new double[n * 4 * Chunk];
        // Where the kernels allow it, four queries go through a chunk's rows a segment of the dimensions at a time,
        // each (row, query) pair's accumulators carried from one segment to the next (see Segments).
        var segment = n >= 4 ? TCodec.SegmentValues(_dim) : 0;
        var state = segment > 0 ? new Vector256<float>[4 * reuse * VectorKernels.SegmentState] : [];
        for (var start = 0; start < quarter; start += Chunk)
        {
            var steps = Math.Min(Chunk, quarter - start);
            for (var done = 0; done < steps; done += reuse)
            {
                var m = Math.Min(reuse, steps - done);
                var j = 0;
                if (segment > 0)
                    for (; j + 4 <= n; j += 4)   // four queries a kernel call, a segment of the dimensions at a time
                        Segments(qs[j], qs[j + 1], qs[j + 2], qs[j + 3], from + start + done, quarter, m, segment, state,
                            raw.AsSpan(j * 4 * Chunk + 4 * done, 4 * m), raw.AsSpan((j + 1) * 4 * Chunk + 4 * done, 4 * m),
                            raw.AsSpan((j + 2) * 4 * Chunk + 4 * done, 4 * m), raw.AsSpan((j + 3) * 4 * Chunk + 4 * done, 4 * m));
                for (; j + 4 <= n; j += 4)   // four queries a kernel call: each row read once for the four
                    Kernels(qs[j], qs[j + 1], qs[j + 2], qs[j + 3], from + start + done, quarter, m, raw.AsSpan(j * 4 * Chunk + 4 * done, 4 * m),
                        raw.AsSpan((j + 1) * 4 * Chunk + 4 * done, 4 * m), raw.AsSpan((j + 2) * 4 * Chunk + 4 * done, 4 * m),
                        raw.AsSpan((j + 3) * 4 * Chunk + 4 * done, 4 * m));
                for (; j + 2 <= n; j += 2)   // two queries a kernel call: each row read once for both
                    Kernels(qs[j], qs[j + 1], from + start + done, quarter, m, raw.AsSpan(j * 4 * Chunk + 4 * done, 4 * m),
                        raw.AsSpan((j + 1) * 4 * Chunk + 4 * done, 4 * m));
                if (j < n) Kernels(qs[j], from + start + done, quarter, m, raw.AsSpan(j * 4 * Chunk + 4 * done, 4 * m));
            }
            for (var j = 0; j < n; j++)
                for (var s = 0; s < 4; s++) Offer(qs[j], from + s * quarter + start, steps, raw.AsSpan(j * 4 * Chunk, 4 * Chunk), s, skips[j], best[j]);
        }
        for (var j = 0; j < n; j++)   // the last rows one by one, as Scan does
            for (var row = from + 4 * quarter; row < to; row++)
            {
                Kernels(qs[j], row, 0, 1, raw.AsSpan(j * 4 * Chunk, 4));   // the same row four times
                Offer(qs[j], row, 1, raw.AsSpan(j * 4 * Chunk, 4), 0, skips[j], best[j]);
            }
        var kept = new Candidate[n][];
        for (var j = 0; j < n; j++) kept[j] = best[j].ToArray();
        return kept;
    }

    /// <summary>Rows [from, to) except <paramref name="skip"/>: the <paramref name="keep"/> best by the storage's
    /// (squared) distance. The range is read as four streams a quarter of it apart, four rows at a time (see
    /// <see cref="VectorKernels"/>: one stream per core cannot reach the memory bandwidth), the last rows one by one.
    /// The kernels' results for a chunk of rows are kept and only then combined with the rows' stored parameters and
    /// offered: a parameter read that misses the cache, taken between two kernel calls, stalls the core with the
    /// streams' loads held back behind it (that cost an fp16 scan about a quarter of its speed).</summary>
    Candidate[] Scan(in TCodec q, int from, int to, int skip, int keep)
    {
        const int Chunk = 256;   // steps of four rows: 8 KB of kernel results
        var best = new TopList(keep);
        var quarter = (to - from) / 4;
        Span<double> raw = stackalloc double[4 * Chunk];
        for (var start = 0; start < quarter; start += Chunk)
        {
            var steps = Math.Min(Chunk, quarter - start);
            Kernels(q, from + start, quarter, steps, raw);
            for (var s = 0; s < 4; s++) Offer(q, from + s * quarter + start, steps, raw, s, skip, best);
        }
        for (var row = from + 4 * quarter; row < to; row++)
        {
            Kernels(q, row, 0, 1, raw);   // the same row four times
            Offer(q, row, 1, raw, 0, skip, best);
        }
        return best.ToArray();
    }

    /// <summary>The codec's kernel for rows first + i + s * spacing (step i, stream s) into raw[4 i + s], called
    /// straight from this loop (the codec's <see cref="IRowCodec{TSelf, TCode}.Kernel4"/> inlines).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void Kernels(in TCodec q, int first, int spacing, int steps, Span<double> raw)
    {
        for (var i = 0; i < steps; i++)
        {
            var r = first + i;
            q.Kernel4(_codes.Row(r), _codes.Row(r + spacing), _codes.Row(r + 2 * spacing), _codes.Row(r + 3 * spacing), raw.Slice(4 * i, 4));
        }
    }

    /// <summary><see cref="Kernels(in TCodec, int, int, int, Span{double})"/> for two queries at once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void Kernels(in TCodec q, in TCodec r, int first, int spacing, int steps, Span<double> rawQ, Span<double> rawR)
    {
        for (var i = 0; i < steps; i++)
        {
            var row = first + i;
            q.Kernel4x2(r, _codes.Row(row), _codes.Row(row + spacing), _codes.Row(row + 2 * spacing), _codes.Row(row + 3 * spacing),
                rawQ.Slice(4 * i, 4), rawR.Slice(4 * i, 4));
        }
    }

    /// <summary><see cref="Kernels(in TCodec, int, int, int, Span{double})"/> for four queries at once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void Kernels(in TCodec a, in TCodec b, in TCodec c, in TCodec d, int first, int spacing, int steps,
        Span<double> rawA, Span<double> rawB, Span<double> rawC, Span<double> rawD)
    {
        for (var i = 0; i < steps; i++)
        {
            var row = first + i;
            a.Kernel4x4(b, c, d, _codes.Row(row), _codes.Row(row + spacing), _codes.Row(row + 2 * spacing), _codes.Row(row + 3 * spacing),
                rawA.Slice(4 * i, 4), rawB.Slice(4 * i, 4), rawC.Slice(4 * i, 4), rawD.Slice(4 * i, 4));
        }
    }

    /// <summary><see cref="Kernels(in TCodec, in TCodec, in TCodec, in TCodec, int, int, int, Span{double}, Span{double}, Span{double}, Span{double})"/>
    /// blocked over the dimensions: for each segment of <paramref name="segment"/> values, every row of the steps
    /// against the four queries' segments (16 KB together, which stay in L1 while the rows' segments come from L2),
    /// each row's accumulators carried in its <see cref="VectorKernels.SegmentState"/> slots of
    /// <paramref name="state"/>; then each row's results, bit for bit those of the whole-row kernels.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void Segments(in TCodec a, in TCodec b, in TCodec c, in TCodec d, int first, int spacing, int steps, int segment, Vector256<float>[] state,
        Span<double> rawA, Span<double> rawB, Span<double> rawC, Span<double> rawD)
    {
        const int Slots = VectorKernels.SegmentState;
        var all = state.AsSpan(0, 4 * steps * Slots);
        all.Clear();
        for (var from = 0; from < _dim; from += segment)
        {
            var to = Math.Min(_dim, from + segment);
            for (var i = 0; i < steps; i++)
                for (var s = 0; s < 4; s++)
                    a.Segment4(b, c, d, _codes.Row(first + i + s * spacing), from, to, all.Slice((4 * i + s) * Slots, Slots));
        }
        Span<double> four = stackalloc double[4];
        for (var k = 0; k < 4 * steps; k++)
        {
            a.Finish4(b, c, d, all.Slice(k * Slots, Slots), four);
            (rawA[k], rawB[k], rawC[k], rawD[k]) = (four[0], four[1], four[2], four[3]);
        }
    }

    /// <summary>Offers rows first .. first + count - 1 except <paramref name="skip"/>, raw[4 i + stream] being the
    /// kernel's result for row first + i, a block's rows at a time (one lookup of its parameters, not one a row).</summary>
    void Offer(in TCodec q, int first, int count, ReadOnlySpan<double> raw, int stream, int skip, TopList best)
    {
        for (var done = 0; done < count;)
        {
            var row = first + done;
            var n = Math.Min(count - done, FeatureIndex.BlockRows - row % FeatureIndex.BlockRows);
            if (skip >= row && skip < row + n)
            {
                var before = skip - row;
                OfferBlock(q, row, before, raw[(4 * done)..], stream, best);
                OfferBlock(q, skip + 1, n - before - 1, raw[(4 * (done + before + 1))..], stream, best);
            }
            else OfferBlock(q, row, n, raw[(4 * done)..], stream, best);
            done += n;
        }
    }

    /// <summary>Rows first .. first + n - 1 of one block by the codec's distance.</summary>
    void OfferBlock(in TCodec q, int first, int n, ReadOnlySpan<double> raw, int stream, TopList best)
    {
        if (n <= 0) return;
        var parameters = _parameters is null ? default : _parameters.Rows(first, n);
        var codec = q;   // a local copy: its fields stay in registers, where loads through the byref repeat every row
        for (var i = 0; i < n; i++) best.Offer(codec.Distance(raw[4 * i + stream], parameters, i), first + i);
    }
}
