using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNet.Api.Gallery;

/// <summary>
/// The scan kernels of <see cref="FeatureIndex"/>'s compact storages: squared distance from fp16 rows and the dot
/// product of uint8 rows with an int16 query, in Vector512 (AVX-512) or Vector256 (AVX2) with a scalar tail; each has
/// a scalar twin that the tests compare with. The exact fp32 distance is <see cref="System.Numerics.Tensors.TensorPrimitives.Distance"/>.
/// </summary>
public static class VectorKernels
{
    /// <summary>Largest magnitude stored as fp16; larger features are clamped (never infinity).</summary>
    public const float HalfMax = 65504f;

    /// <summary>Halves per block of <see cref="SquaredDistance"/>'s query layout.</summary>
    public const int HalfBlock = 32;
    /// <summary>Bytes per block of <see cref="Dot"/>'s query layout.</summary>
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

    /// <summary>Sum of (x[i] - q[i])^2 with x in fp16, in fp32 arithmetic; <paramref name="split"/> is the query in
    /// <see cref="SplitPairs{T}"/>(q, <see cref="HalfBlock"/>) layout.</summary>
    public static float SquaredDistance(ReadOnlySpan<Half> x, ReadOnlySpan<float> split)
    {
        if (x.Length != split.Length) throw new ArgumentException($"{x.Length} halves against {split.Length} floats.");
        var n = x.Length;
        ref var xs = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x));   // fp16 pairs: even in bits 0-15, odd in 16-31
        ref var qs = ref MemoryMarshal.GetReference(split);
        var i = 0;
        var sum = 0f;
        if (Vector512.IsHardwareAccelerated && n >= HalfBlock)
        {
            Vector512<float> a0 = default, a1 = default;
            for (; i <= n - HalfBlock; i += HalfBlock)
            {
                var w = Vector512.LoadUnsafe(ref xs, (nuint)(i / 2));
                var even = HalfToSingle(w << 16) - Vector512.LoadUnsafe(ref qs, (nuint)i);
                var odd = HalfToSingle(w) - Vector512.LoadUnsafe(ref qs, (nuint)(i + 16));
                a0 = Vector512.FusedMultiplyAdd(even, even, a0);
                a1 = Vector512.FusedMultiplyAdd(odd, odd, a1);
            }
            sum = Vector512.Sum(a0 + a1);
        }
        else if (Vector256.IsHardwareAccelerated && n >= HalfBlock)
        {
            Vector256<float> a0 = default, a1 = default;
            for (; i <= n - HalfBlock; i += HalfBlock)
            {
                var w0 = Vector256.LoadUnsafe(ref xs, (nuint)(i / 2));       // halves i .. i+15
                var w1 = Vector256.LoadUnsafe(ref xs, (nuint)(i / 2 + 8));   // halves i+16 .. i+31
                var e0 = HalfToSingle(w0 << 16) - Vector256.LoadUnsafe(ref qs, (nuint)i);
                var e1 = HalfToSingle(w1 << 16) - Vector256.LoadUnsafe(ref qs, (nuint)(i + 8));
                var o0 = HalfToSingle(w0) - Vector256.LoadUnsafe(ref qs, (nuint)(i + 16));
                var o1 = HalfToSingle(w1) - Vector256.LoadUnsafe(ref qs, (nuint)(i + 24));
                a0 = Vector256.FusedMultiplyAdd(e0, e0, a0);
                a1 = Vector256.FusedMultiplyAdd(e1, e1, a1);
                a0 = Vector256.FusedMultiplyAdd(o0, o0, a0);
                a1 = Vector256.FusedMultiplyAdd(o1, o1, a1);
            }
            sum = Vector256.Sum(a0 + a1);
        }
        for (; i < n; i++)
        {
            var d = (float)x[i] - split[i];
            sum += d * d;
        }
        return sum;
    }

    // A half in bits 16-31 of a 32-bit lane (bits 0-15 are ignored) to fp32, exactly for every finite half: the
    // arithmetic shift by 3 puts exponent and mantissa in place and keeps the sign in bit 31 (the mask clears its
    // copies in bits 28-30 and the other half's bits); the product with 2^112 rebiases the exponent (15 -> 127), which
    // also turns half subnormals into the right normal floats.
    const int HalfBits = unchecked((int)0x8FFFE000);
    const float TwoTo112 = 5.192296858534828e33f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector512<float> HalfToSingle(Vector512<int> high) =>
        ((high >> 3) & Vector512.Create(HalfBits)).AsSingle() * Vector512.Create(TwoTo112);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> HalfToSingle(Vector256<int> high) =>
        ((high >> 3) & Vector256.Create(HalfBits)).AsSingle() * Vector256.Create(TwoTo112);

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
        for (; i < n; i++) sum += u[i] * split[i];
        return sum;
    }

    /// <summary>Scalar reference of <see cref="SquaredDistance"/> with the query in its natural order (tests).</summary>
    public static double SquaredDistanceScalar(ReadOnlySpan<Half> x, ReadOnlySpan<float> q)
    {
        double sum = 0;
        for (var i = 0; i < x.Length; i++)
        {
            var d = (double)(float)x[i] - q[i];
            sum += d * d;
        }
        return sum;
    }

    /// <summary>Scalar reference of <see cref="Dot"/> with the query in its natural order (tests).</summary>
    public static long DotScalar(ReadOnlySpan<byte> u, ReadOnlySpan<short> q)
    {
        long sum = 0;
        for (var i = 0; i < u.Length; i++) sum += u[i] * q[i];
        return sum;
    }
}
