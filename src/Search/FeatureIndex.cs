namespace AlexNet.Search;

/// <summary>
/// Exact nearest-neighbour search by Euclidean distance (the paper's section 4.2) over (Count, Dim) fp32 vectors.
/// This class keeps the ids and the lock; the rows are a <see cref="CodedRows"/> for its <see cref="VectorStorage"/>:
/// blocks of <see cref="BlockRows"/> rows in native memory on huge pages (<see cref="RowBlocks{T}"/>), one codec per
/// storage (Codecs/), a scan loop generic over the codec (<see cref="CodedRows{TCodec, TCode}"/>), a top list per
/// partition (<see cref="TopList"/>) and an exact re-rank (<see cref="Rerank"/>).
/// A search is one pass over the rows, split into contiguous partitions (four per thread, one thread per core by
/// default) scanned in parallel, each read as four streams and keeping its own top list; the lists are then merged.
/// A scan is memory-bound, so its floor is the bytes scanned over the memory bandwidth (docs/benchmarks.md). The fp32
/// scan's kernel sums in its own order, so the best 2k rows it finds are re-ranked by
/// <see cref="System.Numerics.Tensors.TensorPrimitives.Distance"/>: results equal a brute-force search with that
/// function, bit for bit (unless k rows lie within fp32 rounding of one another at the cut).
/// <para>With <see cref="VectorStorage.Float16"/> or <see cref="VectorStorage.Int8"/> the scan reads a compact copy
/// (half or a quarter of the bytes) to pick RerankFactor x k candidates, which are then ranked by their fp32 distance
/// (the best 2k of them by TensorPrimitives.Distance, as above); results (ids and distances) are then exact unless a
/// true neighbour missed the short list (recall is measured in FeatureIndexSearchTests and docs/benchmarks.md). The
/// fp32 vectors stay in memory for the re-rank and for <see cref="Get"/>: the compact copy saves scan bandwidth, not
/// memory (it adds 50% or 25%).</para>
/// Removal moves the last row into the hole, so rows stay dense. Ties go to the earlier row. Thread-safe: searches
/// share a read lock, changes take the write lock.
/// </summary>
public sealed class FeatureIndex : IVectorIndex
{
    /// <summary>Rows per storage block: 16 MB of fp32 at 4096 dimensions. The first block grows from 64 rows.</summary>
    public const int BlockRows = 1024;
    const int FirstIds = 64;

    readonly ReaderWriterLockSlim _lock = new();
    readonly Dictionary<long, int> _rowOf = [];
    readonly CodedRows _rows;
    long[] _ids = new long[FirstIds];
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
        _rows = CodedRows.For(storage, dim);
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
    public long ScanBytes => Count * _rows.ScanBytesPerRow;

    public void Add(long id, ReadOnlySpan<float> vector)
    {
        if (vector.Length != Dim) throw new ArgumentException($"The index holds {Dim}-d vectors, got {vector.Length}.", nameof(vector));
        _lock.EnterWriteLock();
        try
        {
            if (_rowOf.ContainsKey(id)) throw new ArgumentException($"Id {id} is already in the index.", nameof(id));
            _rows.Write(_count, vector);
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
                _rows.Move(last, row);
                _ids[row] = _ids[last];
                _rowOf[_ids[row]] = row;
            }
            // Give back a trailing block once a whole block more is free (hysteresis: no churn at a boundary).
            var blockCount = _rows.BlockCount;
            if (blockCount > 1 && _count <= (blockCount - 2) * BlockRows) _rows.DropLastBlock();
            return true;
        }
        finally { _lock.ExitWriteLock(); }
    }

    /// <summary>A copy of the vector stored for <paramref name="id"/> (the fp32 original whatever the storage), or null.</summary>
    public float[]? Get(long id)
    {
        _lock.EnterReadLock();
        try { return _rowOf.TryGetValue(id, out var row) ? _rows.Exact(row).ToArray() : null; }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>The k nearest rows, nearest first (ties to the earlier row), leaving out <paramref name="exclude"/>.
    /// Distances are exact fp32 Euclidean distances (TensorPrimitives.Distance) in every storage.</summary>
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
            var nearest = _rows.Search(query, _count, skip, take, RerankFactor, Threads);
            return [.. nearest.Take(take).Select(c => new Neighbour(_ids[c.Row], c.Distance))];
        }
        finally { _lock.ExitReadLock(); }
    }
    /// <summary>Several searches in one pass over the rows (each row block is read once and scored against every query
    /// while it is in cache): answer j is exactly <see cref="Search(ReadOnlySpan{float}, int, long?)"/>'s for query j
    /// (ids and distances, bit for bit), as if alone. One lock for the pass, as for one search.</summary>
    public Neighbour[][] Search(IReadOnlyList<SearchQuery> queries)
    {
        for (var j = 0; j < queries.Count; j++)
            if (queries[j].Vector.Length != Dim)
                throw new ArgumentException($"The index holds {Dim}-d vectors, query {j} is {queries[j].Vector.Length}-d.", nameof(queries));
        var results = new Neighbour[queries.Count][];
        var scanned = new List<RowQuery>(queries.Count);
        var slots = new List<int>(queries.Count);
        _lock.EnterReadLock();
        try
        {
            for (var j = 0; j < queries.Count; j++)
            {
                var (vector, k, exclude) = queries[j];
                var skip = exclude is { } e && _rowOf.TryGetValue(e, out var excluded) ? excluded : -1;
                var take = k < 1 ? 0 : Math.Min(k, _count - (skip >= 0 ? 1 : 0));
                results[j] = [];
                if (take <= 0) continue;
                scanned.Add(new RowQuery(vector, skip, take));
                slots.Add(j);
            }
            var nearest = scanned.Count switch
            {
                0 => [],
                1 => [_rows.Search(scanned[0].Query, _count, scanned[0].Skip, scanned[0].Take, RerankFactor, Threads)],   // the one-query scan
                _ => _rows.SearchMany(scanned, _count, RerankFactor, Threads),
            };
            for (var i = 0; i < slots.Count; i++)
                results[slots[i]] = [.. nearest[i].Take(scanned[i].Take).Select(c => new Neighbour(_ids[c.Row], c.Distance))];
            return results;
        }
        finally { _lock.ExitReadLock(); }
    }
}
