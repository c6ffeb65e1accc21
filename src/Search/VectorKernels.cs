namespace AlexNet.Search;

/// <summary>
/// The scan kernels of <see cref="FeatureIndex"/> (one file per storage: VectorKernels.Float32.cs, .Float16.cs,
/// .Int8.cs): squared distances of fp32 rows, dot products of fp16 rows with an fp32 query and of uint8 rows with an
/// int16 query, in Vector512 (AVX-512) or Vector256 (AVX2) with a scalar tail; the codecs call them.
/// <para>Each kernel takes four rows and reads them in lockstep. A scan hands it rows a quarter of its range apart, so
/// one core keeps four memory streams in flight instead of one: a single stream per core stops at what one core's
/// outstanding misses allow (on the Zen 5 host an fp16 scan read 21-23 GB/s a core from DRAM that way, and 35 GB/s
/// with four streams; docs/benchmarks.md). The one-row forms call the four-row ones with the row four times, so a row
/// gets bit-identical results whichever way it is scanned. Their scalar references live with the checks
/// (tests/Search.Tests and tools/KernelCheck), not here.
/// The exact distance that results report is <see cref="System.Numerics.Tensors.TensorPrimitives.Distance"/>.</para>
/// </summary>
public static partial class VectorKernels
{
    /// <summary>Largest magnitude stored as fp16; larger features are clamped (never infinity).</summary>
    public const float HalfMax = 65504f;

    /// <summary>Halves per block of the fp16 kernel's query layout.</summary>
    public const int HalfBlock = 32;
    /// <summary>Bytes per block of the uint8 kernel's query layout.</summary>
    public const int ByteBlock = 64;

    /// <summary>
    /// The query layout of the compact kernels: within each full block, the even-indexed values, then the odd-indexed
    /// ones; the tail after the last full block unchanged. A vector of 32-bit words holds fp16 pairs (and one of 16-bit
    /// words byte pairs), so the kernels split low and high halves with shifts and masks instead of cross-lane shuffles.
    /// </summary>
    public static T[] SplitPairs<T>(ReadOnlySpan<T> query, int block)
    {
        var split = new T[query.Length];
        for (var i = 0; i < query.Length; i++) split[SplitIndex(i, query.Length, block)] = query[i];
        return split;
    }

    /// <summary>Where value <paramref name="i"/> of <paramref name="n"/> goes in <see cref="SplitPairs{T}"/>'s layout.</summary>
    public static int SplitIndex(int i, int n, int block)
    {
        var b = i - i % block;
        return b + block > n ? i : b + i % block / 2 + i % 2 * (block / 2);
    }

    static void CheckLengths(int n, int l0, int l1, int l2, int l3, int results)
    {
        if (l0 != n || l1 != n || l2 != n || l3 != n) throw new ArgumentException($"Rows of {l0}, {l1}, {l2} and {l3} values against a query of {n}.");
        if (results < 4) throw new ArgumentException("Four results are written.");
    }

    static ReadOnlySpan<T> Row<T>(int r, ReadOnlySpan<T> x0, ReadOnlySpan<T> x1, ReadOnlySpan<T> x2, ReadOnlySpan<T> x3) =>
        r switch { 0 => x0, 1 => x1, 2 => x2, _ => x3 };
}
