using System.Numerics.Tensors;
using AlexNet.Model;

namespace AlexNet.Api.Gallery;

/// <summary>A gallery image's distance from the query in feature space.</summary>
public readonly record struct Neighbour(long Id, float Distance);

/// <summary>
/// Exact nearest-neighbour search by Euclidean distance (the paper's section 4.2) over a contiguous row-major
/// (Count, Dim) float matrix, one SIMD <see cref="TensorPrimitives.Distance"/> per row. Removal moves the last row
/// into the hole, so rows stay dense. Thread-safe: searches share a read lock, changes take the write lock.
/// </summary>
public sealed class FeatureIndex(int dim)
{
    readonly ReaderWriterLockSlim _lock = new();
    readonly Dictionary<long, int> _rowOf = [];
    float[] _matrix = new float[dim * 64];   // (capacity, Dim)
    long[] _ids = new long[64];
    int _count;

    public int Dim { get; } = dim > 0 ? dim : throw new ArgumentOutOfRangeException(nameof(dim));

    public int Count
    {
        get
        {
            _lock.EnterReadLock();
            try { return _count; } finally { _lock.ExitReadLock(); }
        }
    }

    public void Add(long id, ReadOnlySpan<float> vector)
    {
        if (vector.Length != Dim) throw new ArgumentException($"The index holds {Dim}-d vectors, got {vector.Length}.", nameof(vector));
        _lock.EnterWriteLock();
        try
        {
            if (_rowOf.ContainsKey(id)) throw new ArgumentException($"Id {id} is already in the index.", nameof(id));
            if (_count == _ids.Length)
            {
                Array.Resize(ref _ids, _ids.Length * 2);
                Array.Resize(ref _matrix, _ids.Length * Dim);
            }
            vector.CopyTo(_matrix.AsSpan(_count * Dim, Dim));
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
                _matrix.AsSpan(last * Dim, Dim).CopyTo(_matrix.AsSpan(row * Dim, Dim));
                _ids[row] = _ids[last];
                _rowOf[_ids[row]] = row;
            }
            return true;
        }
        finally { _lock.ExitWriteLock(); }
    }

    /// <summary>A copy of the vector stored for <paramref name="id"/>, or null.</summary>
    public float[]? Get(long id)
    {
        _lock.EnterReadLock();
        try { return _rowOf.TryGetValue(id, out var row) ? _matrix.AsSpan(row * Dim, Dim).ToArray() : null; }
        finally { _lock.ExitReadLock(); }
    }

    /// <summary>The k nearest rows, nearest first (ties to the earlier row), leaving out <paramref name="exclude"/>.</summary>
    public Neighbour[] Search(ReadOnlySpan<float> query, int k, long? exclude = null)
    {
        if (query.Length != Dim) throw new ArgumentException($"The index holds {Dim}-d vectors, the query is {query.Length}-d.", nameof(query));
        if (k < 1) return [];
        _lock.EnterReadLock();
        try
        {
            if (_count == 0) return [];
            var negated = new float[_count];   // TopK keeps the largest, so keep -distance
            for (var row = 0; row < _count; row++)
                negated[row] = -TensorPrimitives.Distance(_matrix.AsSpan(row * Dim, Dim), query);
            var skip = exclude is { } e && _rowOf.ContainsKey(e) ? 1 : 0;
            return [.. Maths.TopK(negated, k + skip)
                .Where(s => _ids[s.Index] != exclude)
                .Take(k)
                .Select(s => new Neighbour(_ids[s.Index], -s.Score))];
        }
        finally { _lock.ExitReadLock(); }
    }
}
