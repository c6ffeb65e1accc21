using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNet.Api.Gallery;

/// <summary>
/// The scan kernels of <see cref="FeatureIndex"/>'s compact storages: dot products of fp16 rows with an fp32 query
/// and of uint8 rows with an int16 query, in Vector512 (AVX-512) or Vector256 (AVX2) with a scalar tail; each has
/// a scalar twin that the tests compare with. The exact distance that results report is
/// <see cref="System.Numerics.Tensors.TensorPrimitives.Distance"/>.
/// </summary>
public static class VectorKernels
{
    /// <summary>Largest magnitude stored as fp16; larger features are clamped (never infinity).</summary>
    public const float HalfMax = 65504f;

    /// <summary>Halves per block of the fp16 <see cref="Dot(ReadOnlySpan{Half}, ReadOnlySpan{float})"/>'s query layout.</summary>
    public const int HalfBlock = 32;
    /// <summary>Bytes per block of the uint8 <see cref="Dot(ReadOnlySpan{byte}, ReadOnlySpan{short})"/>'s query layout.</summary>
    public const int ByteBlock = 64;

    /// <summary>
    /// The query layout of the kernels: within each full block, the even-indexed values, then the odd-indexed ones;
    /// the tail after the last full block unchanged. A vector of 32-bit words holds fp16 pairs (and one of 16-bit words
    /// byte pairs), so the kernels split low and high halves with shifts and masks instead of cross-lane shuffles.
    /// </summary>
    public static T[] SplitPairs<T>(ReadOnlySpan<T> query, int block)
    {
        var split = query.ToArray();
        for (var b = 0; b + block <= query.Length; b += block)
            for (var j = 0; j < block / 2; j++)
            {
                split[b + j] = query[b + 2 * j];
                split[b + block / 2 + j] = query[b + 2 * j + 1];
            }
        return split;
    }

    /// <summary>The fp16 kernel's query factor, 2^112: a half's bits shifted into place in an fp32 read as its value
    /// times 2^-112, so the query is scaled up instead of every stored value.</summary>
    public const float HalfQueryScale = 5.192296858534828e33f;

    /// <summary>Sum of x[i] * q[i] with x in fp16, in fp32 arithmetic; <paramref name="scaledSplit"/> is the query
    /// times <see cref="HalfQueryScale"/> in <see cref="SplitPairs{T}"/>(q, <see cref="HalfBlock"/>) layout (so
    /// |q| must stay below 65504). Each product equals (float)x[i] * q[i] exactly; only the summation order differs.</summary>
    public static float Dot(ReadOnlySpan<Half> x, ReadOnlySpan<float> scaledSplit)
    {
        if (x.Length != scaledSplit.Length) throw new ArgumentException($"{x.Length} halves against {scaledSplit.Length} floats.");
        var n = x.Length;
        ref var xs = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x));   // fp16 pairs: even in bits 0-15, odd in 16-31
        ref var qs = ref MemoryMarshal.GetReference(scaledSplit);
        var i = 0;
        var sum = 0f;
        if (Vector512.IsHardwareAccelerated && n >= HalfBlock)
        {
            var mask = Vector512.Create(HalfBits);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;   // four chains hide the FMA latency
            for (; i <= n - 2 * HalfBlock; i += 2 * HalfBlock)
            {
                var w = Vector512.LoadUnsafe(ref xs, (nuint)(i / 2));
                var v = Vector512.LoadUnsafe(ref xs, (nuint)(i / 2 + 16));
                a0 = Vector512.FusedMultiplyAdd((((w << 16) >> 3) & mask).AsSingle(), Vector512.LoadUnsafe(ref qs, (nuint)i), a0);
                a1 = Vector512.FusedMultiplyAdd(((w >> 3) & mask).AsSingle(), Vector512.LoadUnsafe(ref qs, (nuint)(i + 16)), a1);
                a2 = Vector512.FusedMultiplyAdd((((v << 16) >> 3) & mask).AsSingle(), Vector512.LoadUnsafe(ref qs, (nuint)(i + 32)), a2);
                a3 = Vector512.FusedMultiplyAdd(((v >> 3) & mask).AsSingle(), Vector512.LoadUnsafe(ref qs, (nuint)(i + 48)), a3);
            }
            if (i <= n - HalfBlock)
            {
                var w = Vector512.LoadUnsafe(ref xs, (nuint)(i / 2));
                a0 = Vector512.FusedMultiplyAdd((((w << 16) >> 3) & mask).AsSingle(), Vector512.LoadUnsafe(ref qs, (nuint)i), a0);
                a1 = Vector512.FusedMultiplyAdd(((w >> 3) & mask).AsSingle(), Vector512.LoadUnsafe(ref qs, (nuint)(i + 16)), a1);
                i += HalfBlock;
            }
            sum = Vector512.Sum((a0 + a1) + (a2 + a3));
        }
        else if (Vector256.IsHardwareAccelerated && n >= HalfBlock)
        {
            var mask = Vector256.Create(HalfBits);
            Vector256<float> a0 = default, a1 = default;
            for (; i <= n - HalfBlock; i += HalfBlock)
            {
                var w0 = Vector256.LoadUnsafe(ref xs, (nuint)(i / 2));       // halves i .. i+15
                var w1 = Vector256.LoadUnsafe(ref xs, (nuint)(i / 2 + 8));   // halves i+16 .. i+31
                a0 = Vector256.FusedMultiplyAdd((((w0 << 16) >> 3) & mask).AsSingle(), Vector256.LoadUnsafe(ref qs, (nuint)i), a0);
                a1 = Vector256.FusedMultiplyAdd((((w1 << 16) >> 3) & mask).AsSingle(), Vector256.LoadUnsafe(ref qs, (nuint)(i + 8)), a1);
                a0 = Vector256.FusedMultiplyAdd(((w0 >> 3) & mask).AsSingle(), Vector256.LoadUnsafe(ref qs, (nuint)(i + 16)), a0);
                a1 = Vector256.FusedMultiplyAdd(((w1 >> 3) & mask).AsSingle(), Vector256.LoadUnsafe(ref qs, (nuint)(i + 24)), a1);
            }
            sum = Vector256.Sum(a0 + a1);
        }
        for (; i <= n - HalfBlock; i += HalfBlock)   // full blocks without vectors: the split layout
            for (var j = 0; j < HalfBlock / 2; j++)
                sum += (float)x[i + 2 * j] * (scaledSplit[i + j] / HalfQueryScale) +
                    (float)x[i + 2 * j + 1] * (scaledSplit[i + HalfBlock / 2 + j] / HalfQueryScale);
        for (; i < n; i++) sum += (float)x[i] * (scaledSplit[i] / HalfQueryScale);
        return sum;
    }

    // A half in bits 16-31 of a 32-bit lane (bits 0-15 are ignored), as an fp32 worth its value times 2^-112: the
    // arithmetic shift by 3 puts exponent and mantissa in place and keeps the sign in bit 31; the mask clears the
    // sign's copies in bits 28-30 and the other half's bits. Exact for every finite half (subnormals included).
    const int HalfBits = unchecked((int)0x8FFFE000);

    /// <summary>Sum of u[i] * q[i], exactly (integer arithmetic); <paramref name="split"/> is the query in
    /// <see cref="SplitPairs{T}"/>(q, <see cref="ByteBlock"/>) layout.</summary>
    public static long Dot(ReadOnlySpan<byte> u, ReadOnlySpan<short> split)
    {
        if (u.Length != split.Length) throw new ArgumentException($"{u.Length} bytes against {split.Length} shorts.");
        var n = u.Length;
        ref var us = ref Unsafe.As<byte, short>(ref MemoryMarshal.GetReference(u));   // byte pairs: even low, odd high
        ref var qs = ref MemoryMarshal.GetReference(split);
        var i = 0;
        long sum = 0;
        // An int lane adds at most 128 products of 255 * 32767 (1.07e9) between flushes to long: far from 2^31.
        if (Avx512BW.IsSupported && Vector512.IsHardwareAccelerated && n >= ByteBlock)
        {
            var low = Vector512.Create((short)0xFF);
            while (i <= n - ByteBlock)
            {
                var acc = Vector512<int>.Zero;
                var end = Math.Min(n - ByteBlock + 1, i + 32 * ByteBlock);
                for (; i < end; i += ByteBlock)
                {
                    var w = Vector512.LoadUnsafe(ref us, (nuint)(i / 2));
                    acc += Avx512BW.MultiplyAddAdjacent(w & low, Vector512.LoadUnsafe(ref qs, (nuint)i));
                    acc += Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(w, 8), Vector512.LoadUnsafe(ref qs, (nuint)(i + 32)));
                }
                var (l0, l1) = Vector512.Widen(acc);
                sum += Vector512.Sum(l0 + l1);
            }
        }
        else if (Avx2.IsSupported && n >= ByteBlock)
        {
            var low = Vector256.Create((short)0xFF);
            while (i <= n - ByteBlock)
            {
                var acc = Vector256<int>.Zero;
                var end = Math.Min(n - ByteBlock + 1, i + 16 * ByteBlock);
                for (; i < end; i += ByteBlock)
                {
                    var w0 = Vector256.LoadUnsafe(ref us, (nuint)(i / 2));        // bytes i .. i+31
                    var w1 = Vector256.LoadUnsafe(ref us, (nuint)(i / 2 + 16));   // bytes i+32 .. i+63
                    acc += Avx2.MultiplyAddAdjacent(w0 & low, Vector256.LoadUnsafe(ref qs, (nuint)i));
                    acc += Avx2.MultiplyAddAdjacent(w1 & low, Vector256.LoadUnsafe(ref qs, (nuint)(i + 16)));
                    acc += Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(w0, 8), Vector256.LoadUnsafe(ref qs, (nuint)(i + 32)));
                    acc += Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(w1, 8), Vector256.LoadUnsafe(ref qs, (nuint)(i + 48)));
                }
                var (l0, l1) = Vector256.Widen(acc);
                sum += Vector256.Sum(l0 + l1);
            }
        }
        for (; i <= n - ByteBlock; i += ByteBlock)   // full blocks without vectors: the split layout
            for (var j = 0; j < ByteBlock / 2; j++)
                sum += u[i + 2 * j] * split[i + j] + u[i + 2 * j + 1] * split[i + ByteBlock / 2 + j];
        for (; i < n; i++) sum += u[i] * split[i];
        return sum;
    }

    /// <summary>Scalar reference of <see cref="Dot(ReadOnlySpan{Half}, ReadOnlySpan{float})"/> with the query
    /// unscaled and in its natural order (tests).</summary>
    public static double DotScalar(ReadOnlySpan<Half> x, ReadOnlySpan<float> q)
    {
        double sum = 0;
        for (var i = 0; i < x.Length; i++) sum += (double)(float)x[i] * q[i];
        return sum;
    }

    /// <summary>Scalar reference of <see cref="Dot(ReadOnlySpan{byte}, ReadOnlySpan{short})"/> with the query in its natural order (tests).</summary>
    public static long DotScalar(ReadOnlySpan<byte> u, ReadOnlySpan<short> q)
    {
        long sum = 0;
        for (var i = 0; i < u.Length; i++) sum += u[i] * q[i];
        return sum;
    }
}
