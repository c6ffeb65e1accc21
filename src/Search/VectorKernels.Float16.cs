using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace AlexNet.Search;

public static partial class VectorKernels
{
    /// <summary>The fp16 kernel's query factor, 2^112: a half's bits shifted into place in an fp32 read as its value
    /// times 2^-112, so the query is scaled up instead of every stored value.</summary>
    public const float HalfQueryScale = 5.192296858534828e33f;

    /// <summary>Sum of x[i] * q[i] with x in fp16, for one row (<see cref="Dots(ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{float}, Span{float})"/>
    /// with the row four times).</summary>
    public static float Dot(ReadOnlySpan<Half> x, ReadOnlySpan<float> scaledSplit)
    {
        Span<float> d = stackalloc float[4];
        Dots(x, x, x, x, scaledSplit, d);
        return d[0];
    }

    /// <summary>Sums of x[i] * q[i] with x in fp16 for four rows, in fp32 arithmetic; <paramref name="scaledSplit"/> is
    /// the query times <see cref="HalfQueryScale"/> in <see cref="SplitPairs{T}"/>(q, <see cref="HalfBlock"/>) layout
    /// (so |q| must stay below 65504). Each product equals (float)x[i] * q[i] exactly; only the summation order differs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // optimised from the first call: no slow tier-0 scans
    public static void Dots(ReadOnlySpan<Half> x0, ReadOnlySpan<Half> x1, ReadOnlySpan<Half> x2, ReadOnlySpan<Half> x3,
        ReadOnlySpan<float> scaledSplit, Span<float> results)
    {
        var n = scaledSplit.Length;
        CheckLengths(n, x0.Length, x1.Length, x2.Length, x3.Length, results.Length);
        // fp16 pairs: even in bits 0-15, odd in 16-31
        ref var p0 = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x0));
        ref var p1 = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x1));
        ref var p2 = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x2));
        ref var p3 = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x3));
        ref var qs = ref MemoryMarshal.GetReference(scaledSplit);
        nuint i = 0, end = (nuint)n;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        if (Vector512.IsHardwareAccelerated && end >= HalfBlock)
        {
            // Two chains a row: a step is 32 halves of each of the four rows (eight independent FMA chains in all), as
            // in the fp32 kernel.
            var mask = Vector512.Create(HalfBits);
            Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
            for (; i + HalfBlock <= end; i += HalfBlock)
            {
                var (q0, q1) = (Vector512.LoadUnsafe(ref qs, i), Vector512.LoadUnsafe(ref qs, i + 16));
                var w = Vector512.LoadUnsafe(ref p0, i / 2);
                a0 = Vector512.FusedMultiplyAdd(Low(w, mask), q0, a0); a1 = Vector512.FusedMultiplyAdd(High(w, mask), q1, a1);
                w = Vector512.LoadUnsafe(ref p1, i / 2);
                b0 = Vector512.FusedMultiplyAdd(Low(w, mask), q0, b0); b1 = Vector512.FusedMultiplyAdd(High(w, mask), q1, b1);
                w = Vector512.LoadUnsafe(ref p2, i / 2);
                c0 = Vector512.FusedMultiplyAdd(Low(w, mask), q0, c0); c1 = Vector512.FusedMultiplyAdd(High(w, mask), q1, c1);
                w = Vector512.LoadUnsafe(ref p3, i / 2);
                d0 = Vector512.FusedMultiplyAdd(Low(w, mask), q0, d0); d1 = Vector512.FusedMultiplyAdd(High(w, mask), q1, d1);
            }
            (s0, s1, s2, s3) = (Vector512.Sum(a0 + a1), Vector512.Sum(b0 + b1), Vector512.Sum(c0 + c1), Vector512.Sum(d0 + d1));
        }
        else if (Vector256.IsHardwareAccelerated && end >= HalfBlock)
        {
            var mask = Vector256.Create(HalfBits);
            Vector256<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
            for (; i + HalfBlock <= end; i += HalfBlock)
            {
                // words i/2 .. i/2+7 hold halves i .. i+15, words i/2+8 .. i/2+15 halves i+16 .. i+31
                var (q0, q1, q2, q3) = (Vector256.LoadUnsafe(ref qs, i), Vector256.LoadUnsafe(ref qs, i + 8), Vector256.LoadUnsafe(ref qs, i + 16), Vector256.LoadUnsafe(ref qs, i + 24));
                var (w, v) = (Vector256.LoadUnsafe(ref p0, i / 2), Vector256.LoadUnsafe(ref p0, i / 2 + 8));
                a0 = Vector256.FusedMultiplyAdd(Low(w, mask), q0, a0); a1 = Vector256.FusedMultiplyAdd(Low(v, mask), q1, a1);
                a0 = Vector256.FusedMultiplyAdd(High(w, mask), q2, a0); a1 = Vector256.FusedMultiplyAdd(High(v, mask), q3, a1);
                (w, v) = (Vector256.LoadUnsafe(ref p1, i / 2), Vector256.LoadUnsafe(ref p1, i / 2 + 8));
                b0 = Vector256.FusedMultiplyAdd(Low(w, mask), q0, b0); b1 = Vector256.FusedMultiplyAdd(Low(v, mask), q1, b1);
                b0 = Vector256.FusedMultiplyAdd(High(w, mask), q2, b0); b1 = Vector256.FusedMultiplyAdd(High(v, mask), q3, b1);
                (w, v) = (Vector256.LoadUnsafe(ref p2, i / 2), Vector256.LoadUnsafe(ref p2, i / 2 + 8));
                c0 = Vector256.FusedMultiplyAdd(Low(w, mask), q0, c0); c1 = Vector256.FusedMultiplyAdd(Low(v, mask), q1, c1);
                c0 = Vector256.FusedMultiplyAdd(High(w, mask), q2, c0); c1 = Vector256.FusedMultiplyAdd(High(v, mask), q3, c1);
                (w, v) = (Vector256.LoadUnsafe(ref p3, i / 2), Vector256.LoadUnsafe(ref p3, i / 2 + 8));
                d0 = Vector256.FusedMultiplyAdd(Low(w, mask), q0, d0); d1 = Vector256.FusedMultiplyAdd(Low(v, mask), q1, d1);
                d0 = Vector256.FusedMultiplyAdd(High(w, mask), q2, d0); d1 = Vector256.FusedMultiplyAdd(High(v, mask), q3, d1);
            }
            (s0, s1, s2, s3) = (Vector256.Sum(a0 + a1), Vector256.Sum(b0 + b1), Vector256.Sum(c0 + c1), Vector256.Sum(d0 + d1));
        }
        results[0] = s0; results[1] = s1; results[2] = s2; results[3] = s3;
        for (var r = 0; r < 4; r++)
        {
            var x = Row(r, x0, x1, x2, x3);
            var j = (int)i;
            var sum = 0f;
            for (; j + HalfBlock <= n; j += HalfBlock)   // full blocks without vectors: the split layout
                for (var k = 0; k < HalfBlock / 2; k++)
                    sum += (float)x[j + 2 * k] * (scaledSplit[j + k] / HalfQueryScale) +
                        (float)x[j + 2 * k + 1] * (scaledSplit[j + HalfBlock / 2 + k] / HalfQueryScale);
            for (; j < n; j++) sum += (float)x[j] * (scaledSplit[j] / HalfQueryScale);
            results[r] += sum;
        }
    }

    // A half in bits 16-31 of a 32-bit lane (bits 0-15 are ignored), as an fp32 worth its value times 2^-112: the
    // arithmetic shift by 3 puts exponent and mantissa in place and keeps the sign in bit 31; the mask clears the
    // sign's copies in bits 28-30 and the other half's bits. Exact for every finite half (subnormals included).
    const int HalfBits = unchecked((int)0x8FFFE000);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> Low(Vector512<int> w, Vector512<int> mask) => (((w << 16) >> 3) & mask).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> High(Vector512<int> w, Vector512<int> mask) => ((w >> 3) & mask).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Low(Vector256<int> w, Vector256<int> mask) => (((w << 16) >> 3) & mask).AsSingle();
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> High(Vector256<int> w, Vector256<int> mask) => ((w >> 3) & mask).AsSingle();
}
