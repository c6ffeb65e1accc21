using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace AlexNet.Search;

public static partial class VectorKernels
{
    /// <summary>Sum of (x[i] - q[i])^2 in fp32 for one row (<see cref="SquaredDistances"/> with the row four times).</summary>
    public static float SquaredDistance(ReadOnlySpan<float> x, ReadOnlySpan<float> q)
    {
        Span<float> d = stackalloc float[4];
        SquaredDistances(x, x, x, x, q, d);
        return d[0];
    }

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
