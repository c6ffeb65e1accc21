namespace AlexNet.Search;

/// <summary>
/// Rows of <see cref="Width"/> values of <typeparamref name="T"/>, row-major, in blocks of
/// <see cref="FeatureIndex.BlockRows"/> rows in native memory on huge pages (<see cref="NativeBlock{T}"/>: no single
/// huge array, no copy of everything on growth, fewer TLB misses). The first block grows from 64 rows. The index keeps
/// one of these for its fp32 vectors and, with a compact storage, one for the codes and one for the codes' per-row
/// parameters; all of them reserve, move and drop rows together.
/// </summary>
sealed class RowBlocks<T>(int width) where T : unmanaged
{
    const int BlockRows = FeatureIndex.BlockRows;
    const int FirstBlockRows = 64;

    readonly List<NativeBlock<T>> _blocks = [];

    public int Width { get; } = width;
    public int BlockCount => _blocks.Count;

    public Span<T> Row(int row) => _blocks[row / BlockRows].AsSpan(row % BlockRows * Width, Width);

    /// <summary>Rows first .. first + n - 1, which must lie in one block, as one span.</summary>
    public Span<T> Rows(int first, int n) => _blocks[first / BlockRows].AsSpan(first % BlockRows * Width, n * Width);

    /// <summary>Makes room for <paramref name="row"/>: a new block, or a larger first block.</summary>
    public void Reserve(int row)
    {
        var (b, r) = (row / BlockRows, row % BlockRows);
        if (b == _blocks.Count)
        {
            _blocks.Add(new NativeBlock<T>((b == 0 ? FirstBlockRows : BlockRows) * Width));
            return;
        }
        var capacity = _blocks[b].Length / Width;
        if (r < capacity) return;
        var grown = _blocks[b].Grow(Math.Min(BlockRows, 2 * capacity) * Width);
        _blocks[b].Dispose();
        _blocks[b] = grown;
    }

    public void Move(int from, int to) => Row(from).CopyTo(Row(to));

    /// <summary>Frees the last block.</summary>
    public void DropLast()
    {
        _blocks[^1].Dispose();
        _blocks.RemoveAt(_blocks.Count - 1);
    }
}
