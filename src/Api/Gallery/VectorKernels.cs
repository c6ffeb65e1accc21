using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNet.Api.Gallery;

/// <summary>
/// The scan kernels of <see cref="FeatureIndex"/>'s compact storages: squared distance from fp16 rows and the dot
/// product of uint8 rows with an int16 query. Both are memory-bound on AVX2 (a few instructions per 32 bytes); each has
/// a scalar twin that the tests compare with. The exact fp32 distance is <see cref="System.Numerics.Tensors.TensorPrimitives.Distance"/>.
/// </summary>
public static class VectorKernels
{
    /// <summary>Largest magnitude stored as fp16; larger features are clamped (never infinity).</summary>
    public const float HalfMax = 65504f;

    /// <summary>Sum of (x[i] - q[i])^2 with x in fp16, in fp32 arithmetic.</summary>
    public static float SquaredDistance(ReadOnlySpan<Half> x, ReadOnlySpan<float> q)
    {
        if (x.Length != q.Length) throw new ArgumentException($"{x.Length} halves against {q.Length} floats.");
        var n = x.Length;
        ref var xs = ref Unsafe.As<Half, ushort>(ref MemoryMarshal.GetReference(x));
        ref var qs = ref MemoryMarshal.GetReference(q);
        var i = 0;
        var sum = 0f;
        if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            Vector256<float> a0 = default, a1 = default;
            for (; i <= n - 32; i += 32)
            {
                var (h0, h1) = Vector256.Widen(Vector256.LoadUnsafe(ref xs, (nuint)i));             // 16 halves -> 2 x 8
                var (h2, h3) = Vector256.Widen(Vector256.LoadUnsafe(ref xs, (nuint)(i + 16)));
                var d0 = HalfToSingle(h0) - Vector256.LoadUnsafe(ref qs, (nuint)i);
                var d1 = HalfToSingle(h1) - Vector256.LoadUnsafe(ref qs, (nuint)(i + 8));
                var d2 = HalfToSingle(h2) - Vector256.LoadUnsafe(ref qs, (nuint)(i + 16));
                var d3 = HalfToSingle(h3) - Vector256.LoadUnsafe(ref qs, (nuint)(i + 24));
                a0 = Vector256.FusedMultiplyAdd(d0, d0, a0);
                a1 = Vector256.FusedMultiplyAdd(d1, d1, a1);
                a0 = Vector256.FusedMultiplyAdd(d2, d2, a0);
                a1 = Vector256.FusedMultiplyAdd(d3, d3, a1);
            }
            sum = Vector256.Sum(a0 + a1);
        }
        for (; i < n; i++)
        {
            var d = (float)x[i] - q[i];
            sum += d * d;
        }
        return sum;
    }

    /// <summary>
    /// fp16 bits (one per 32-bit lane) to fp32, exactly for every finite half: the exponent and mantissa shifted into
    /// place and rescaled by 2^112 (which also turns half subnormals into the right normal floats), then the sign.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> HalfToSingle(Vector256<uint> h)
    {
        var magnitude = ((h & Vector256.Create(0x7FFFu)) << 13).AsSingle() * Vector256.Create(5.192296858534828e33f);   // 2^112
        return (magnitude.AsUInt32() | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }

    /// <summary>Sum of u[i] * q[i], exactly (integer arithmetic).</summary>
    public static long Dot(ReadOnlySpan<byte> u, ReadOnlySpan<short> q)
    {
        if (u.Length != q.Length) throw new ArgumentException($"{u.Length} bytes against {q.Length} shorts.");
        var n = u.Length;
        ref var us = ref MemoryMarshal.GetReference(u);
        ref var qs = ref Unsafe.As<short, ushort>(ref MemoryMarshal.GetReference(q));
        var i = 0;
        long sum = 0;
        if (Avx2.IsSupported && n >= 32)
        {
            // Each int lane takes 4 products of at most 255 * 32767 per 32 bytes, so 1024 bytes stay below 2^31.
            while (i <= n - 32)
            {
                var acc = Vector256<int>.Zero;
                var end = Math.Min(n - 31, i + 1024);
                for (; i < end; i += 32)
                {
                    var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref us, (nuint)i));   // 32 bytes -> 2 x 16 ushorts
                    acc += Avx2.MultiplyAddAdjacent(lo.AsInt16(), Vector256.LoadUnsafe(ref qs, (nuint)i).AsInt16());
                    acc += Avx2.MultiplyAddAdjacent(hi.AsInt16(), Vector256.LoadUnsafe(ref qs, (nuint)(i + 16)).AsInt16());
                }
                var (l0, l1) = Vector256.Widen(acc);
                sum += Vector256.Sum(l0 + l1);
            }
        }
        for (; i < n; i++) sum += u[i] * q[i];
        return sum;
    }

    /// <summary>Scalar reference of <see cref="SquaredDistance(ReadOnlySpan{Half}, ReadOnlySpan{float})"/> (tests).</summary>
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

    /// <summary>Scalar reference of <see cref="Dot"/> (tests).</summary>
    public static long DotScalar(ReadOnlySpan<byte> u, ReadOnlySpan<short> q)
    {
        long sum = 0;
        for (var i = 0; i < u.Length; i++) sum += u[i] * q[i];
        return sum;
    }
}
