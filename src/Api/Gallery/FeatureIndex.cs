using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AlexNet.Api.Gallery;

/// <summary>A gallery image's distance from the query in feature space.</summary>
public readonly record struct Neighbour(long Id, float Distance);

/// <summary>How <see cref="FeatureIndex"/> stores the vectors that a search scans.</summary>
public enum VectorStorage
{
    /// <summary>The fp32 vectors themselves (4 bytes a value) are scanned: the exact search.</summary>
    Float32,
    /// <summary>An fp16 copy (2 bytes a value) is scanned; a short list is re-ranked exactly from the fp32 vectors.</summary>
    Float16,
    /// <summary>A uint8 copy (1 byte a value, with a per-row offset and scale) is scanned; a short list is re-ranked
    /// exactly from the fp32 vectors.</summary>
    Int8,
}

/// <summary>
/// Exact nearest-neighbour search by Euclidean distance (the paper's section 4.2) over row-major (Count, Dim) fp32
/// vectors kept in blocks of <see cref="BlockRows"/> rows in native memory on huge pages (<see cref="NativeBlock{T}"/>:
/// no single huge array, no copy of everything on growth, fewer TLB misses).
/// A search is one pass over the rows, split into contiguous partitions (four per thread, one thread per core by
/// default) scanned in parallel, each read as four streams and keeping its own top list; the lists are then merged.
/// A scan is memory-bound, so its floor is the bytes scanned over the memory bandwidth (docs/benchmarks.md). The fp32
/// scan's kernel sums in its own order, so the best 2k rows it finds are re-ranked by
/// <see cref="TensorPrimitives.Distance"/>: results equal a brute-force search with that function, bit for bit
/// (unless k rows lie within fp32 rounding of one another at the cut).
/// <para>With <see cref="VectorStorage.Float16"/> or <see cref="VectorStorage.Int8"/> the scan reads a compact copy
/// (half or a quarter of the bytes) to pick RerankFactor x k candidates, which are then ranked by their fp32 distance
/// (the best 2k of them by TensorPrimitives.Distance, as above); results (ids and distances) are then exact unless a
/// true neighbour missed the short list (recall is measured in FeatureIndexSearchTests and docs/benchmarks.md). The
/// fp32 vectors stay in memory for the re-rank and for <see cref="Get"/>: the compact copy saves scan bandwidth, not
/// memory (it adds 50% or 25%).</para>
/// Removal moves the last row into the hole, so rows stay dense. Ties go to the earlier row. Thread-safe: searches
/// share a read lock, changes take the write lock.
/// </summary>
public sealed class FeatureIndex
{
    /// <summary>Rows per storage block: 16 MB of fp32 at 4096 dimensions. The first block grows from 64 rows.</summary>
    public const int BlockRows = 1024;
    const int FirstBlockRows = 64;
    /// <summary>Below this many scanned values a search stays on the calling thread (fork/join costs ~10 us).</summary>
    const long ValuesPerPartition = 1 << 20;
    const int PartitionsPerThread = 4;

    readonly ReaderWriterLockSlim _lock = new();
    readonly Dictionary<long, int> _rowOf = [];
    // Blocks in native memory on huge pages (NativeBlock), freed when dropped.
    readonly List<NativeBlock<float>> _exact = [];    // per block (rows, Dim) fp32: scanned in Float32, re-ranked from otherwise
    readonly List<NativeBlock<Half>> _halves = [];    // per block (rows, Dim), Float16 only
    readonly List<NativeBlock<float>> _norms = [];    // per block (rows), Float16 only: |fp16 row|^2
    readonly List<NativeBlock<byte>> _bytes = [];     // per block (rows, Dim), Int8 only: x = offset + scale * u
    readonly List<NativeBlock<float>> _quant = [];    // per block (rows, 3), Int8 only: offset, scale, |dequantised row|^2
    long[] _ids = new long[FirstBlockRows];
    int _count;

    /// <param name="dim">Vector length (FeatureDim).</param>
    /// <param name="storage">What the scan reads.</param>
    /// <param name="rerankFactor">With a compact storage, RerankFactor x k candidates are re-ranked exactly.</param>
    /// <param name="threads">Partitions scanned in parallel; 0 means one per core.</param>
    public FeatureIndex(int dim, VectorStorage storage = VectorStorage.Float32, int rerankFactor = 10, int threads = 0)
    {
        Dim = dim > 0 ? dim : throw new ArgumentOutOfRangeException(nameof(dim));
        Storage = Enum.IsDefined(storage) ? storage : throw new ArgumentOutOfRangeException(nameof(storage));
        RerankFactor = rerankFactor > 0 ? rerankFactor : throw new ArgumentOutOfRangeException(nameof(rerankFactor));
        Threads = threads > 0 ? threads : threads == 0 ? Environment.ProcessorCount : throw new ArgumentOutOfRangeException(nameof(threads));
    }

    public int Dim { get; }
    public VectorStorage Storage { get; }
    public int RerankFactor { get; }
    public int Threads { get; }

    public int Count
    {
        get
        {
            _lock.EnterReadLock();
            try { return _count; } finally { _lock.ExitReadLock(); }
        }
    }

    /// <summary>Bytes one search scans: every row of the scanned storage (the re-rank reads RerankFactor x k more rows).</summary>
    public long ScanBytes
    {
        get
        {
            var perRow = Storage switch { VectorStorage.Float32 => 4L * Dim, VectorStorage.Float16 => 2L * Dim, _ => Dim + 12L };
            return Count * perRow;
        }
    }

    public void Add(long id, ReadOnlySpan<float> vector)
    {
        if (vector.Length != Dim) throw new ArgumentException($"The index holds {Dim}-d vectors, got {vector.Length}.", nameof(vector));
        _lock.EnterWriteLock();
        try
        {
            if (_rowOf.ContainsKey(id)) throw new ArgumentException($"Id {id} is already in the index.", nameof(id));
            Reserve(_count);
            Write(_count, vector);
            if (_count == _ids.Length) Array.Resize(ref _ids, _ids.Length * 2);
            _ids[_count] = id;
            _rowOf[id] = _count++;
        }
        finally { _lock.ExitWriteLock(); }
    }

    public bool Remove(long id)
    {
        _lock.EnterWriteLock();
        try
        {
            if (!_rowOf.Remove(id, out var row)) return false;
            var last = --_count;
            if (row != last)
            {
                Move(last, row);
                _ids[row] = _ids[last];
                _rowOf[_ids[row]] = row;
            }
            // Give back a trailing block once a whole block more is free (hysteresis: no churn at a boundary).
            var blockCount = _exact.Count;
            if (blockCount > 1 && _count <= (blockCount - 2) * BlockRows)
            {
                Drop(_exact, blockCount);
                Drop(_halves, blockCount);
                Drop(_norms, blockCount);
                Drop(_bytes, blockCount);
                Drop(_quant, blockCount);
            }
            return true;
        }
        finally { _lock.ExitWriteLock(); }
    }

    static void Drop<T>(List<NativeBlock<T>> blocks, int count) where T : unmanaged
    {
        if (blocks.Count != count) return;   // a storage this index does not use
        blocks[^1].Dispose();
        blocks.RemoveAt(count - 1);
    }

    /// <summary>A copy of the vector stored for <paramref name="id"/> (the fp32 original whatever the storage), or null.</summary>
    public float[]? Get(long id)
    {
        _lock.EnterReadLock();
        try { return _rowOf.TryGetValue(id, out var row) ? Exact(row).ToArray() : null; }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>The k nearest rows, nearest first (ties to the earlier row), leaving out <paramref name="exclude"/>.
    /// Distances are exact fp32 Euclidean distances (<see cref="TensorPrimitives.Distance"/>) in every storage.</summary>
    public Neighbour[] Search(ReadOnlySpan<float> query, int k, long? exclude = null)
    {
        if (query.Length != Dim) throw new ArgumentException($"The index holds {Dim}-d vectors, the query is {query.Length}-d.", nameof(query));
        if (k < 1) return [];
        _lock.EnterReadLock();
        try
        {
            var skip = exclude is { } e && _rowOf.TryGetValue(e, out var excluded) ? excluded : -1;
            var take = Math.Min(k, _count - (skip >= 0 ? 1 : 0));
            if (take <= 0) return [];
            // Float32's kernel sums in another order than TensorPrimitives.Distance, so it keeps 2k for the exact
            // re-rank (a swap needs k rows within fp32 rounding of each other); the compact storages RerankFactor x k.
            var shortlist = (int)Math.Min(_count, (long)take * (Storage == VectorStorage.Float32 ? 2 : RerankFactor));
            var q = new Query(query, Storage);
            // Four partitions a thread, taken by Threads workers as they come free: a core that another tenant slows
            // down takes fewer of them instead of finishing last.
            var partitions = (int)Math.Clamp((long)_count * Dim / ValuesPerPartition, 1, PartitionsPerThread * Threads);
            Candidate[] candidates;
            if (partitions == 1) candidates = Scan(q, 0, _count, skip, shortlist);
            else
            {
                var parts = new Candidate[partitions][];
                Parallel.For(0, partitions, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(partitions, Threads) },
                    p => parts[p] = Scan(q, (int)((long)_count * p / partitions), (int)((long)_count * (p + 1) / partitions), skip, shortlist));
                candidates = [.. parts.SelectMany(c => c)];
            }
            Array.Sort(candidates);
            candidates = candidates[..Math.Min(candidates.Length, shortlist)];
            if (Storage != VectorStorage.Float32)
            {
                // The short list's fp32 squared distances, four rows at a time (their rows lie anywhere in memory, so
                // one at a time each waits for memory), cut to 2k as the Float32 scan's are.
                Span<float> d = stackalloc float[4];
                var values = q.Values.Span;
                var i = 0;
                for (; i + 4 <= candidates.Length; i += 4)
                {
                    VectorKernels.SquaredDistances(Exact(candidates[i].Row), Exact(candidates[i + 1].Row), Exact(candidates[i + 2].Row),
                        Exact(candidates[i + 3].Row), values, d);
                    for (var j = 0; j < 4; j++) candidates[i + j] = candidates[i + j] with { Distance = d[j] };
                }
                for (; i < candidates.Length; i++)
                    candidates[i] = candidates[i] with { Distance = VectorKernels.SquaredDistance(Exact(candidates[i].Row), values) };
                Array.Sort(candidates);
                candidates = candidates[..Math.Min(candidates.Length, 2 * take)];
            }
            // The exact re-rank: the distances results report, of the rows just read (in cache).
            for (var i = 0; i < candidates.Length; i++)
                candidates[i] = new Candidate(TensorPrimitives.Distance(Exact(candidates[i].Row), query), candidates[i].Row);
            Array.Sort(candidates);
            Neighbour[] result = [.. candidates.Take(take).Select(c => new Neighbour(_ids[c.Row], c.Distance))];
            GC.KeepAlive(this);   // the blocks' finalizers must not run while spans into them are read
            return result;
        }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>Rows [from, to) except <paramref name="skip"/>: the <paramref name="keep"/> best by the storage's
    /// (squared) distance. The range is read as four streams a quarter of it apart, four rows at a time (see
    /// <see cref="VectorKernels"/>: one stream per core cannot reach the memory bandwidth), the last rows one by one.
    /// The kernels' results for a chunk of rows are kept and only then combined with the rows' stored norms and
    /// offered: a norm read that misses the cache, taken between two kernel calls, stalls the core with the streams'
    /// loads held back behind it (that cost an fp16 scan about a quarter of its speed).</summary>
    Candidate[] Scan(Query q, int from, int to, int skip, int keep)
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

    /// <summary>Offers rows first .. first + count - 1 except <paramref name="skip"/>, raw[4 i + stream] being the
    /// kernel's result for row first + i, a block's rows at a time (one lookup of its norms, not one a row).</summary>
    void Offer(Query q, int first, int count, ReadOnlySpan<double> raw, int stream, int skip, TopList best)
    {
        for (var done = 0; done < count;)
        {
            var row = first + done;
            var n = Math.Min(count - done, BlockRows - row % BlockRows);
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

    /// <summary>Rows first .. first + n - 1 of one block by the storage's distance: |x - q|^2 from the kernel in
    /// Float32; in Float16 and Int8 |x - q|^2 expanded as |x|^2 - 2 x.q + |q|^2 (one product a value) with |x|^2
    /// stored per row; in Int8 x = o + s u, so x.q = o sum(q) + s u.q.</summary>
    void OfferBlock(Query q, int first, int n, ReadOnlySpan<double> raw, int stream, TopList best)
    {
        if (n <= 0) return;
        var (b, r) = (first / BlockRows, first % BlockRows);
        switch (Storage)
        {
            case VectorStorage.Float32:
                for (var i = 0; i < n; i++) best.Offer((float)raw[4 * i + stream], first + i);
                break;
            case VectorStorage.Float16:
            {
                var norms = _norms[b].AsSpan(r, n);
                var queryNorm = q.SquaredNorm;
                for (var i = 0; i < n; i++) best.Offer((float)(norms[i] - 2.0 * raw[4 * i + stream] + queryNorm), first + i);
                break;
            }
            default:
            {
                var p = _quant[b].AsSpan(3 * r, 3 * n);
                var (sum, queryNorm) = (q.Sum, q.SquaredNorm);
                for (var i = 0; i < n; i++)
                    best.Offer((float)(p[3 * i + 2] - 2 * (p[3 * i] * sum + p[3 * i + 1] * raw[4 * i + stream]) + queryNorm), first + i);
                break;
            }
        }
    }

    /// <summary>The storage's kernel for rows first + i + s * spacing (step i, stream s): raw[4 i + s] is the squared
    /// distance in Float32, the dot product with the query in Float16 and Int8 (Int8's scaled back by the query's int16
    /// scale). One loop per storage, the kernel called straight from it: behind a per-step helper with a switch the
    /// same fp16 scan ran about a quarter slower.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    void Kernels(Query q, int first, int spacing, int steps, Span<double> raw)
    {
        Span<float> d = stackalloc float[4];
        switch (Storage)
        {
            case VectorStorage.Float32:
            {
                var values = q.Values.Span;
                for (var i = 0; i < steps; i++)
                {
                    var r = first + i;
                    VectorKernels.SquaredDistances(Exact(r), Exact(r + spacing), Exact(r + 2 * spacing), Exact(r + 3 * spacing), values, d);
                    (raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]) = (d[0], d[1], d[2], d[3]);
                }
                break;
            }
            case VectorStorage.Float16:
            {
                var split = q.Split.Span;
                for (var i = 0; i < steps; i++)
                {
                    var r = first + i;
                    VectorKernels.Dots(Halves(r), Halves(r + spacing), Halves(r + 2 * spacing), Halves(r + 3 * spacing), split, d);
                    (raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]) = (d[0], d[1], d[2], d[3]);
                }
                break;
            }
            default:
            {
                var int16 = q.Int16.Span;
                var scale = q.Int16Scale;
                Span<long> dots = stackalloc long[4];
                for (var i = 0; i < steps; i++)
                {
                    var r = first + i;
                    VectorKernels.Dots(Bytes(r), Bytes(r + spacing), Bytes(r + 2 * spacing), Bytes(r + 3 * spacing), int16, dots);
                    (raw[4 * i], raw[4 * i + 1], raw[4 * i + 2], raw[4 * i + 3]) = (dots[0] * scale, dots[1] * scale, dots[2] * scale, dots[3] * scale);
                }
                break;
            }
        }
    }

    Span<Half> Halves(int row) => _halves[row / BlockRows].AsSpan(row % BlockRows * Dim, Dim);
    Span<byte> Bytes(int row) => _bytes[row / BlockRows].AsSpan(row % BlockRows * Dim, Dim);

    /// <summary>The query in the forms the scans need, in buffers the calling thread keeps for its next search (a
    /// search runs on one thread, which holds its query until it returns; fresh pinned arrays cost ~20 us each).</summary>
    sealed class Query
    {
        [ThreadStatic] static float[]? t_values, t_split;
        [ThreadStatic] static short[]? t_int16;

        public Query(ReadOnlySpan<float> query, VectorStorage storage)
        {
            var n = query.Length;
            Values = Aligned(ref t_values, n);
            query.CopyTo(Values.Span);
            if (storage == VectorStorage.Float16)
            {
                // Clamped as stored values are, so the scaled query stays finite; written in the kernel's layout
                // (VectorKernels.SplitPairs).
                Split = Aligned(ref t_split, n);
                var split = Split.Span;
                double norm = 0;
                for (var i = 0; i < n; i++)
                {
                    var v = Math.Clamp(query[i], -VectorKernels.HalfMax, VectorKernels.HalfMax);
                    norm += (double)v * v;
                    split[VectorKernels.SplitIndex(i, n, VectorKernels.HalfBlock)] = v * VectorKernels.HalfQueryScale;
                }
                SquaredNorm = norm;
                return;
            }
            if (storage != VectorStorage.Int8) return;
            // Int16 with the largest magnitude at 32767: relative rounding 1.5e-5, far below the uint8 storage's.
            var max = TensorPrimitives.MaxMagnitude(query);
            Int16Scale = max > 0 && float.IsFinite(max) ? max / 32767.0 : 1;
            Int16 = Aligned(ref t_int16, n);
            var int16 = Int16.Span;
            var inverse = 1 / Int16Scale;
            for (var i = 0; i < n; i++)
                int16[VectorKernels.SplitIndex(i, n, VectorKernels.ByteBlock)] = (short)Math.Clamp(Math.Round(query[i] * inverse), -32767, 32767);
            Sum = TensorPrimitives.Sum(query);   // fp32 sums: the dot products they enter are re-ranked exactly
            SquaredNorm = TensorPrimitives.SumOfSquares(query);
        }

        public Memory<float> Values { get; }
        /// <summary>Float16: the values times 2^112 in the kernel's layout.</summary>
        public Memory<float> Split { get; }
        /// <summary>Int8: round(value / Int16Scale), in the kernel's layout.</summary>
        public Memory<short> Int16 { get; }
        public double Int16Scale { get; }
        public double Sum { get; }
        public double SquaredNorm { get; }   // of the values as the storage's kernel sees them

        /// <summary>n values starting on a 64-byte boundary (in a pinned array, so they stay there), as the rows do:
        /// a vector load then never straddles two cache lines.</summary>
        static Memory<T> Aligned<T>(ref T[]? cache, int n) where T : unmanaged
        {
            var size = Unsafe.SizeOf<T>();
            if (cache is null || cache.Length < n + 64 / size) cache = GC.AllocateUninitializedArray<T>(n + 64 / size, pinned: true);
            var offset = (int)((64 - Marshal.UnsafeAddrOfPinnedArrayElement(cache, 0) % 64) % 64) / size;
            return cache.AsMemory(offset, n);
        }
    }

    readonly record struct Candidate(float Distance, int Row) : IComparable<Candidate>
    {
        public int CompareTo(Candidate other)
        {
            var c = Distance.CompareTo(other.Distance);
            return c != 0 ? c : Row.CompareTo(other.Row);
        }
    }

    /// <summary>The n smallest (distance, row) seen, as a max-heap ordered by distance then row, so ties keep the
    /// earlier row in whatever order rows arrive.</summary>
    sealed class TopList(int capacity)
    {
        readonly Candidate[] _heap = new Candidate[capacity];
        int _n;

        /// <summary>Keeps (distance, row) if it is among the best so far: once full, one comparison for most rows.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Offer(float distance, int row)
        {
            if (_n == _heap.Length && distance > _heap[0].Distance) return;
            Insert(distance, row);
        }

        void Insert(float distance, int row)
        {
            if (_n < _heap.Length)
            {
                var i = _n++;
                var c = new Candidate(distance, row);
                while (i > 0 && _heap[(i - 1) / 2].CompareTo(c) < 0)
                {
                    _heap[i] = _heap[(i - 1) / 2];
                    i = (i - 1) / 2;
                }
                _heap[i] = c;
                return;
            }
            var item = new Candidate(distance, row);
            if (float.IsNaN(distance) || item.CompareTo(_heap[0]) >= 0) return;
            var at = 0;
            while (true)
            {
                var child = 2 * at + 1;
                if (child >= _n) break;
                if (child + 1 < _n && _heap[child + 1].CompareTo(_heap[child]) > 0) child++;
                if (_heap[child].CompareTo(item) <= 0) break;
                _heap[at] = _heap[child];
                at = child;
            }
            _heap[at] = item;
        }

        public Candidate[] ToArray() => _heap.AsSpan(0, _n).ToArray();
    }

    Span<float> Exact(int row) => _exact[row / BlockRows].AsSpan(row % BlockRows * Dim, Dim);

    /// <summary>Makes room for <paramref name="row"/> in every storage: a new block, or a larger first block.</summary>
    void Reserve(int row)
    {
        var (b, r) = (row / BlockRows, row % BlockRows);
        if (b == _exact.Count)
        {
            var rows = b == 0 ? FirstBlockRows : BlockRows;
            _exact.Add(new NativeBlock<float>(rows * Dim));
            if (Storage == VectorStorage.Float16)
            {
                _halves.Add(new NativeBlock<Half>(rows * Dim));
                _norms.Add(new NativeBlock<float>(rows));
            }
            if (Storage == VectorStorage.Int8)
            {
                _bytes.Add(new NativeBlock<byte>(rows * Dim));
                _quant.Add(new NativeBlock<float>(rows * 3));
            }
            return;
        }
        var capacity = _exact[b].Length / Dim;
        if (r < capacity) return;
        var grown = Math.Min(BlockRows, 2 * capacity);
        _exact[b] = Grow(_exact[b], grown * Dim);
        if (Storage == VectorStorage.Float16)
        {
            _halves[b] = Grow(_halves[b], grown * Dim);
            _norms[b] = Grow(_norms[b], grown);
        }
        if (Storage == VectorStorage.Int8)
        {
            _bytes[b] = Grow(_bytes[b], grown * Dim);
            _quant[b] = Grow(_quant[b], grown * 3);
        }
    }

    static NativeBlock<T> Grow<T>(NativeBlock<T> block, int length) where T : unmanaged
    {
        var grown = block.Grow(length);
        block.Dispose();
        return grown;
    }

    void Write(int row, ReadOnlySpan<float> vector)
    {
        var (b, r) = (row / BlockRows, row % BlockRows);
        vector.CopyTo(_exact[b].AsSpan(r * Dim, Dim));
        if (Storage == VectorStorage.Float16)
        {
            var halves = _halves[b].AsSpan(r * Dim, Dim);
            double norm = 0;
            for (var i = 0; i < Dim; i++)
            {
                halves[i] = (Half)Math.Clamp(vector[i], -VectorKernels.HalfMax, VectorKernels.HalfMax);
                norm += (double)(float)halves[i] * (float)halves[i];
            }
            _norms[b].Span[r] = (float)norm;
        }
        else if (Storage == VectorStorage.Int8)
        {
            // Per-row affine uint8: offset = min, scale = (max - min) / 255; post-ReLU rows get offset 0.
            var (min, max) = (TensorPrimitives.Min(vector), TensorPrimitives.Max(vector));
            var scale = (max - min) / 255f;
            if (!(scale > 0) || !float.IsFinite(scale)) scale = 0;
            var bytes = _bytes[b].AsSpan(r * Dim, Dim);
            double norm = 0;
            for (var i = 0; i < Dim; i++)
            {
                var u = scale > 0 ? (byte)Math.Clamp(MathF.Round((vector[i] - min) / scale), 0, 255) : (byte)0;
                bytes[i] = u;
                var x = (double)min + (double)scale * u;
                norm += x * x;
            }
            var p = _quant[b].AsSpan(3 * r, 3);
            (p[0], p[1], p[2]) = (min, scale, (float)norm);
        }
    }

    void Move(int from, int to)
    {
        var (fb, fr, tb, tr) = (from / BlockRows, from % BlockRows, to / BlockRows, to % BlockRows);
        _exact[fb].AsSpan(fr * Dim, Dim).CopyTo(_exact[tb].AsSpan(tr * Dim, Dim));
        if (Storage == VectorStorage.Float16)
        {
            _halves[fb].AsSpan(fr * Dim, Dim).CopyTo(_halves[tb].AsSpan(tr * Dim, Dim));
            _norms[tb].Span[tr] = _norms[fb].Span[fr];
        }
        if (Storage == VectorStorage.Int8)
        {
            _bytes[fb].AsSpan(fr * Dim, Dim).CopyTo(_bytes[tb].AsSpan(tr * Dim, Dim));
            _quant[fb].AsSpan(fr * 3, 3).CopyTo(_quant[tb].AsSpan(tr * 3, 3));
        }
    }
}
