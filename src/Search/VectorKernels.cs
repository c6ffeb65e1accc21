using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace AlexNet.Search;

/// <summary>
/// The scan kernels of <see cref="FeatureIndex"/>, which the codecs call: squared distances of fp32 rows (this file,
/// with the query layout and the one-row forms), dot products of fp16 rows with an fp32 query and of uint8 rows with
/// an int16 query (VectorKernels.Dots.cs), in Vector512 (AVX-512) or Vector256 (AVX2) with a scalar tail.
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

    // ---- one row: the four-row kernel with the row four times, so a row scores the same whichever way it is read ---

    /// <summary>Sum of (x[i] - q[i])^2 in fp32 for one row (<see cref="SquaredDistances"/>).</summary>
    public static float SquaredDistance(ReadOnlySpan<float> x, ReadOnlySpan<float> q) { Four<float> d = default; SquaredDistances(x, x, x, x, q, d); return d[0]; }

    /// <summary>Sum of x[i] * q[i] with x in fp16 for one row (<see cref="Dots(ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{float}, Span{float})"/>).</summary>
    public static float Dot(ReadOnlySpan<Half> x, ReadOnlySpan<float> scaledSplit) { Four<float> d = default; Dots(x, x, x, x, scaledSplit, d); return d[0]; }

    /// <summary>Sum of u[i] * q[i], exactly, for one row (<see cref="Dots(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{short}, Span{long})"/>).</summary>
    public static long Dot(ReadOnlySpan<byte> u, ReadOnlySpan<short> split) { Four<long> d = default; Dots(u, u, u, u, split, d); return d[0]; }

    // ---- fp32 -------------------------------------------------------------------------------------------------

    /// <summary>Sum of (x[i] - q[i])^2 in fp32 for four rows; <paramref name="results"/>[r] is row r's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // optimised from the first call: no slow tier-0 scans
    public static void SquaredDistances(ReadOnlySpan<float> x0, ReadOnlySpan<float> x1, ReadOnlySpan<float> x2, ReadOnlySpan<float> x3,
        ReadOnlySpan<float> q, Span<float> results)
    {
        var n = q.Length;
        CheckLengths(n, x0.Length, x1.Length, x2.Length, x3.Length, results.Length);
        ref var p0 = ref MemoryMarshal.GetReference(x0);
        ref var p1 = ref MemoryMarshal.GetReference(x1);
        ref var p2 = ref MemoryMarshal.GetReference(x2);
        ref var p3 = ref MemoryMarshal.GetReference(x3);
        ref var qs = ref MemoryMarshal.GetReference(q);
        nuint i = 0, end = (nuint)n;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector512.IsHardwareAccelerated && end >= 16)
        {
            // Two chains a row: a step is 32 values of each of the four rows. A 64-value step with four chains a row
            // streamed 10-15% slower from memory (more instructions between a row's loads).
            Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
            for (; i + 32 <= end; i += 32)
            {
                var (q0, q1) = (Vector512.LoadUnsafe(ref qs, i), Vector512.LoadUnsafe(ref qs, i + 16));
                a0 = Square(Vector512.LoadUnsafe(ref p0, i) - q0, a0); a1 = Square(Vector512.LoadUnsafe(ref p0, i + 16) - q1, a1);
                b0 = Square(Vector512.LoadUnsafe(ref p1, i) - q0, b0); b1 = Square(Vector512.LoadUnsafe(ref p1, i + 16) - q1, b1);
                c0 = Square(Vector512.LoadUnsafe(ref p2, i) - q0, c0); c1 = Square(Vector512.LoadUnsafe(ref p2, i + 16) - q1, c1);
                d0 = Square(Vector512.LoadUnsafe(ref p3, i) - q0, d0); d1 = Square(Vector512.LoadUnsafe(ref p3, i + 16) - q1, d1);
            }
            for (; i + 16 <= end; i += 16)
            {
                var q0 = Vector512.LoadUnsafe(ref qs, i);
                a0 = Square(Vector512.LoadUnsafe(ref p0, i) - q0, a0);
                b0 = Square(Vector512.LoadUnsafe(ref p1, i) - q0, b0);
                c0 = Square(Vector512.LoadUnsafe(ref p2, i) - q0, c0);
                d0 = Square(Vector512.LoadUnsafe(ref p3, i) - q0, d0);
            }
            (s0, s1, s2, s3) = (Vector512.Sum(a0 + a1), Vector512.Sum(b0 + b1), Vector512.Sum(c0 + c1), Vector512.Sum(d0 + d1));
        }
        else if (Vector256.IsHardwareAccelerated && end >= 8)
        {
            Vector256<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
            for (; i + 16 <= end; i += 16)
            {
                var (q0, q1) = (Vector256.LoadUnsafe(ref qs, i), Vector256.LoadUnsafe(ref qs, i + 8));
                a0 = Square(Vector256.LoadUnsafe(ref p0, i) - q0, a0); a1 = Square(Vector256.LoadUnsafe(ref p0, i + 8) - q1, a1);
                b0 = Square(Vector256.LoadUnsafe(ref p1, i) - q0, b0); b1 = Square(Vector256.LoadUnsafe(ref p1, i + 8) - q1, b1);
                c0 = Square(Vector256.LoadUnsafe(ref p2, i) - q0, c0); c1 = Square(Vector256.LoadUnsafe(ref p2, i + 8) - q1, c1);
                d0 = Square(Vector256.LoadUnsafe(ref p3, i) - q0, d0); d1 = Square(Vector256.LoadUnsafe(ref p3, i + 8) - q1, d1);
            }
            for (; i + 8 <= end; i += 8)
            {
                var q0 = Vector256.LoadUnsafe(ref qs, i);
                a0 = Square(Vector256.LoadUnsafe(ref p0, i) - q0, a0);
                b0 = Square(Vector256.LoadUnsafe(ref p1, i) - q0, b0);
                c0 = Square(Vector256.LoadUnsafe(ref p2, i) - q0, c0);
                d0 = Square(Vector256.LoadUnsafe(ref p3, i) - q0, d0);
            }
            (s0, s1, s2, s3) = (Vector256.Sum(a0 + a1), Vector256.Sum(b0 + b1), Vector256.Sum(c0 + c1), Vector256.Sum(d0 + d1));
        }
        results[0] = s0; results[1] = s1; results[2] = s2; results[3] = s3;
        for (var r = 0; r < 4; r++)
        {
            var x = Row(r, x0, x1, x2, x3);
            for (var j = (int)i; j < n; j++)
            {
                var d = x[j] - q[j];
                results[r] += d * d;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Square(Vector512<float> d, Vector512<float> acc) => Vector512.FusedMultiplyAdd(d, d, acc);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Square(Vector256<float> d, Vector256<float> acc) => Vector256.FusedMultiplyAdd(d, d, acc);
}
