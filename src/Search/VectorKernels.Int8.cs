using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNet.Search;

public static partial class VectorKernels
{
    /// <summary>Sum of u[i] * q[i], exactly, for one row (<see cref="Dots(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{short}, Span{long})"/>
    /// with the row four times).</summary>
    public static long Dot(ReadOnlySpan<byte> u, ReadOnlySpan<short> split)
    {
        Span<long> d = stackalloc long[4];
        Dots(u, u, u, u, split, d);
        return d[0];
    }

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
