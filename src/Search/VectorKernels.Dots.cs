using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNet.Search;

/// <summary>The dot-product kernels of the compact storages: fp16 rows against an fp32 query, uint8 rows against an
/// int16 query (see <see cref="VectorKernels"/>).</summary>
public static partial class VectorKernels
{
    // ---- fp16 -------------------------------------------------------------------------------------------------

    /// <summary>The fp16 kernel's query factor, 2^112: a half's bits shifted into place in an fp32 read as its value
    /// times 2^-112, so the query is scaled up instead of every stored value.</summary>
    public const float HalfQueryScale = 5.192296858534828e33f;

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

    // ---- uint8 ------------------------------------------------------------------------------------------------

    /// <summary>Sums of u[i] * q[i] for four rows, exactly (integer arithmetic); <paramref name="split"/> is the query in
    /// <see cref="SplitPairs{T}"/>(q, <see cref="ByteBlock"/>) layout.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // optimised from the first call: no slow tier-0 scans
    public static void Dots(ReadOnlySpan<byte> u0, ReadOnlySpan<byte> u1, ReadOnlySpan<byte> u2, ReadOnlySpan<byte> u3,
        ReadOnlySpan<short> split, Span<long> results)
    {
        var n = split.Length;
        CheckLengths(n, u0.Length, u1.Length, u2.Length, u3.Length, results.Length);
        // byte pairs: even low, odd high
        ref var p0 = ref Unsafe.As<byte, short>(ref MemoryMarshal.GetReference(u0));
        ref var p1 = ref Unsafe.As<byte, short>(ref MemoryMarshal.GetReference(u1));
        ref var p2 = ref Unsafe.As<byte, short>(ref MemoryMarshal.GetReference(u2));
        ref var p3 = ref Unsafe.As<byte, short>(ref MemoryMarshal.GetReference(u3));
        ref var qs = ref MemoryMarshal.GetReference(split);
        nuint i = 0, end = (nuint)n;
        long s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        // An int lane adds at most 128 products of 255 * 32767 (1.07e9) between flushes to long: far from 2^31.
        if (Avx512BW.IsSupported && Vector512.IsHardwareAccelerated && end >= ByteBlock)
        {
            var low = Vector512.Create((short)0xFF);
            while (i + ByteBlock <= end)
            {
                Vector512<int> a = default, b = default, c = default, d = default;
                var stop = Math.Min(end, i + 32 * ByteBlock);
                for (; i + ByteBlock <= stop; i += ByteBlock)
                {
                    var (q0, q1) = (Vector512.LoadUnsafe(ref qs, i), Vector512.LoadUnsafe(ref qs, i + 32));
                    var w = Vector512.LoadUnsafe(ref p0, i / 2);
                    a += Avx512BW.MultiplyAddAdjacent(w & low, q0) + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(w, 8), q1);
                    w = Vector512.LoadUnsafe(ref p1, i / 2);
                    b += Avx512BW.MultiplyAddAdjacent(w & low, q0) + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(w, 8), q1);
                    w = Vector512.LoadUnsafe(ref p2, i / 2);
                    c += Avx512BW.MultiplyAddAdjacent(w & low, q0) + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(w, 8), q1);
                    w = Vector512.LoadUnsafe(ref p3, i / 2);
                    d += Avx512BW.MultiplyAddAdjacent(w & low, q0) + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(w, 8), q1);
                }
                s0 += Sum(a); s1 += Sum(b); s2 += Sum(c); s3 += Sum(d);
            }
        }
        else if (Avx2.IsSupported && end >= ByteBlock)
        {
            var low = Vector256.Create((short)0xFF);
            while (i + ByteBlock <= end)
            {
                Vector256<int> a = default, b = default, c = default, d = default;
                var stop = Math.Min(end, i + 16 * ByteBlock);
                for (; i + ByteBlock <= stop; i += ByteBlock)
                {
                    // words i/2 .. i/2+15 hold bytes i .. i+31, words i/2+16 .. i/2+31 bytes i+32 .. i+63
                    var (q0, q1, q2, q3) = (Vector256.LoadUnsafe(ref qs, i), Vector256.LoadUnsafe(ref qs, i + 16), Vector256.LoadUnsafe(ref qs, i + 32), Vector256.LoadUnsafe(ref qs, i + 48));
                    var (w, v) = (Vector256.LoadUnsafe(ref p0, i / 2), Vector256.LoadUnsafe(ref p0, i / 2 + 16));
                    a += Bytes(w, v, low, q0, q1, q2, q3);
                    (w, v) = (Vector256.LoadUnsafe(ref p1, i / 2), Vector256.LoadUnsafe(ref p1, i / 2 + 16));
                    b += Bytes(w, v, low, q0, q1, q2, q3);
                    (w, v) = (Vector256.LoadUnsafe(ref p2, i / 2), Vector256.LoadUnsafe(ref p2, i / 2 + 16));
                    c += Bytes(w, v, low, q0, q1, q2, q3);
                    (w, v) = (Vector256.LoadUnsafe(ref p3, i / 2), Vector256.LoadUnsafe(ref p3, i / 2 + 16));
                    d += Bytes(w, v, low, q0, q1, q2, q3);
                }
                s0 += Sum(a); s1 += Sum(b); s2 += Sum(c); s3 += Sum(d);
            }
        }
        results[0] = s0; results[1] = s1; results[2] = s2; results[3] = s3;
        for (var r = 0; r < 4; r++)
        {
            var u = Row(r, u0, u1, u2, u3);
            var j = (int)i;
            long sum = 0;
            for (; j + ByteBlock <= n; j += ByteBlock)   // full blocks without vectors: the split layout
                for (var k = 0; k < ByteBlock / 2; k++)
                    sum += u[j + 2 * k] * split[j + k] + u[j + 2 * k + 1] * split[j + ByteBlock / 2 + k];
            for (; j < n; j++) sum += u[j] * split[j];
            results[r] += sum;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<int> Bytes(Vector256<short> w, Vector256<short> v, Vector256<short> low,
        Vector256<short> q0, Vector256<short> q1, Vector256<short> q2, Vector256<short> q3) =>
        (Avx2.MultiplyAddAdjacent(w & low, q0) + Avx2.MultiplyAddAdjacent(v & low, q1)) +
        (Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(w, 8), q2) + Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(v, 8), q3));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static long Sum(Vector512<int> acc)
    {
        var (l0, l1) = Vector512.Widen(acc);
        return Vector512.Sum(l0 + l1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static long Sum(Vector256<int> acc)
    {
        var (l0, l1) = Vector256.Widen(acc);
        return Vector256.Sum(l0 + l1);
    }
}
