using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNet.Api.Gallery;

/// <summary>
/// The scan kernels of <see cref="FeatureIndex"/>: squared distances of fp32 rows, dot products of fp16 rows with an
/// fp32 query and of uint8 rows with an int16 query, in Vector512 (AVX-512) or Vector256 (AVX2) with a scalar tail.
/// <para>Each kernel takes four rows and reads them in lockstep. A scan hands it rows a quarter of its range apart, so
/// one core keeps four memory streams in flight instead of one: a single stream per core stops at what one core's
/// outstanding misses allow (on the Zen 5 host an fp16 scan read 21-23 GB/s a core from DRAM that way, and 35 GB/s
/// with four streams; docs/benchmarks.md). The one-row forms call the four-row ones with the row four times, so a row
/// gets bit-identical results whichever way it is scanned. Each kernel has a scalar twin that the tests compare with.
/// The exact distance that results report is <see cref="System.Numerics.Tensors.TensorPrimitives.Distance"/>.</para>
/// </summary>
public static class VectorKernels
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

    // ---- fp32 -------------------------------------------------------------------------------------------------

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

    /// <summary>Scalar reference of <see cref="SquaredDistance"/> (tests).</summary>
    public static double SquaredDistanceScalar(ReadOnlySpan<float> x, ReadOnlySpan<float> q)
    {
        double sum = 0;
        for (var i = 0; i < x.Length; i++) sum += ((double)x[i] - q[i]) * ((double)x[i] - q[i]);
        return sum;
    }

    // ---- fp16 -------------------------------------------------------------------------------------------------

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

    /// <summary>Scalar reference of the fp16 <see cref="Dot(ReadOnlySpan{Half}, ReadOnlySpan{float})"/> with the
    /// query unscaled and in its natural order (tests).</summary>
    public static double DotScalar(ReadOnlySpan<Half> x, ReadOnlySpan<float> q)
    {
        double sum = 0;
        for (var i = 0; i < x.Length; i++) sum += (double)(float)x[i] * q[i];
        return sum;
    }

    // ---- uint8 ------------------------------------------------------------------------------------------------

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

    /// <summary>Scalar reference of the uint8 <see cref="Dot(ReadOnlySpan{byte}, ReadOnlySpan{short})"/> with the query
    /// in its natural order (tests).</summary>
    public static long DotScalar(ReadOnlySpan<byte> u, ReadOnlySpan<short> q)
    {
        long sum = 0;
        for (var i = 0; i < u.Length; i++) sum += u[i] * q[i];
        return sum;
    }
}
