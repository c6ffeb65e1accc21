using System.Runtime.CompilerServices;

namespace AlexNet.Search;

/// <summary>A row and its distance from the query (squared, by a storage's kernel, until the re-rank makes it the
/// exact distance). Ordered by distance, then row: ties go to the earlier row.</summary>
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
