using System.Runtime.Intrinsics;

namespace AlexNet.Search.Codecs;

/// <summary>
/// One storage's code: how a row is encoded for the scan, the query in the form the storage's kernel takes, and how
/// the kernel's result for a row becomes the storage's squared distance (faiss's <c>DistanceComputer</c>:
/// <c>set_query</c>, <c>distances_batch_4</c>). A codec is a struct and the scan is generic over it, so the JIT
/// compiles one scan loop per storage with the codec's calls inlined and no virtual call, as TensorPrimitives does
/// with its operator structs (<c>Aggregate&lt;T, SubtractSquaredOperator&lt;T&gt;, AddOperator&lt;T&gt;&gt;</c>).
/// A value of the codec is one search's prepared query; the static members describe the storage.
/// </summary>
/// <typeparam name="TSelf">The codec itself.</typeparam>
/// <typeparam name="TCode">What a row is stored as in the scanned blocks (float, Half, byte).</typeparam>
interface IRowCodec<TSelf, TCode> where TSelf : struct, IRowCodec<TSelf, TCode> where TCode : unmanaged
{
    /// <summary>The scan reads the fp32 rows themselves: no code blocks, and a short list of 2k (the kernel sums in
    /// another order than the exact distance) instead of RerankFactor x k, re-ranked without a squared-distance pass.</summary>
    static abstract bool ScansExactRows { get; }

    /// <summary>fp32 values kept per row beside its code (a norm, an offset and a scale); 0 for none.</summary>
    static abstract int ParametersPerRow { get; }

    /// <summary>Bytes a search scans per row (<see cref="FeatureIndex.ScanBytes"/>).</summary>
    static abstract long ScanBytesPerRow(int dim);

    /// <summary>Writes <paramref name="vector"/>'s code and its per-row parameters.</summary>
    static abstract void Encode(ReadOnlySpan<float> vector, Span<TCode> code, Span<float> parameters);

    /// <summary>The query prepared for this storage's kernel, in <paramref name="buffers"/> (the query's, kept for a later
    /// search: see <see cref="QueryBuffers"/>). <paramref name="values"/> is the query's 64-byte aligned fp32 copy.</summary>
    static abstract TSelf Prepare(ReadOnlySpan<float> query, Aligned<float> values, QueryBuffers buffers);

    /// <summary>raw[r] = the kernel's result for row r of four (distances_batch_4): the squared distance, or the dot
    /// product with the query that <see cref="Distance"/> turns into one.</summary>
    void Kernel4(ReadOnlySpan<TCode> x0, ReadOnlySpan<TCode> x1, ReadOnlySpan<TCode> x2, ReadOnlySpan<TCode> x3, Span<double> raw);

    /// <summary><see cref="Kernel4"/> for this query into <paramref name="raw"/> and for <paramref name="other"/> into
    /// <paramref name="rawOther"/>, each row read once for both (searches answered together); bit for bit the same
    /// results as two <see cref="Kernel4"/> calls.</summary>
    void Kernel4x2(in TSelf other, ReadOnlySpan<TCode> x0, ReadOnlySpan<TCode> x1, ReadOnlySpan<TCode> x2, ReadOnlySpan<TCode> x3,
        Span<double> raw, Span<double> rawOther);

    /// <summary><see cref="Kernel4"/> for this query and <paramref name="b"/>, <paramref name="c"/>, <paramref name="d"/>
    /// into raw, rawB, rawC, rawD, each row read once for the four where the kernels allow (AVX2), else two
    /// <see cref="Kernel4x2"/> calls; bit for bit the same results as four <see cref="Kernel4"/> calls.</summary>
    void Kernel4x4(in TSelf b, in TSelf c, in TSelf d, ReadOnlySpan<TCode> x0, ReadOnlySpan<TCode> x1, ReadOnlySpan<TCode> x2, ReadOnlySpan<TCode> x3,
        Span<double> raw, Span<double> rawB, Span<double> rawC, Span<double> rawD);

    /// <summary>Values per segment of <see cref="Segment4"/> for rows of <paramref name="dim"/> values (about
    /// <see cref="VectorKernels.SegmentQueryBytes"/> of each query), or 0 where this host has no segmented kernel for
    /// them (a pass then calls <see cref="Kernel4x4"/>).</summary>
    static abstract int SegmentValues(int dim);

    /// <summary>Values [from, to) of one row against this query and b, c, d, each (row, query) pair's accumulators
    /// carried in <paramref name="state"/> (<see cref="VectorKernels.SegmentState"/> slots, zeros before the first
    /// segment): the dimension-blocked form of <see cref="Kernel4x4"/> (<see cref="VectorKernels"/>' Segments).</summary>
    void Segment4(in TSelf b, in TSelf c, in TSelf d, ReadOnlySpan<TCode> row, int from, int to, Span<Vector256<float>> state);

    /// <summary>The kernel results of a row for this query and b, c, d (raw[0..3]) from its state after the last
    /// segment: bit for bit <see cref="Kernel4"/>'s for that row.</summary>
    void Finish4(in TSelf b, in TSelf c, in TSelf d, ReadOnlySpan<Vector256<float>> state, Span<double> raw);

    /// <summary>The storage's squared distance of row i of a block's run of rows, from its kernel result and the run's
    /// per-row parameters (<see cref="ParametersPerRow"/> values a row, row i's at <paramref name="i"/> x that).</summary>
    float Distance(double raw, ReadOnlySpan<float> parameters, int i);
}
