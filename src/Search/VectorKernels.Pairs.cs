using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNet.Search;

/// <summary>
/// The four-row kernels for two queries at once, for searches answered together (<see cref="FeatureIndex.Search(IReadOnlyList{SearchQuery})"/>):
/// each row vector is loaded (and, for fp16 and uint8, widened) once for both queries. Each (row, query) pair keeps the
/// accumulators, the order of its sums and the final reduction of the one-query kernel, so results are bit for bit
/// those of two calls of it. Shapes other than the one-query kernel's AVX-512 path with no tail (a length that is a
/// multiple of its step) are answered by those two calls.
/// </summary>
public static partial class VectorKernels
{
    /// <summary><see cref="SquaredDistances"/> of four rows against <paramref name="q"/> into <paramref name="resultsQ"/>
    /// and against <paramref name="r"/> into <paramref name="resultsR"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SquaredDistances(ReadOnlySpan<float> x0, ReadOnlySpan<float> x1, ReadOnlySpan<float> x2, ReadOnlySpan<float> x3,
        ReadOnlySpan<float> q, ReadOnlySpan<float> r, Span<float> resultsQ, Span<float> resultsR)
    {
        var n = q.Length;
        if (!Vector512.IsHardwareAccelerated || n == 0 || n % 32 != 0 || r.Length != n)
        {
            SquaredDistances(x0, x1, x2, x3, q, resultsQ);
            SquaredDistances(x0, x1, x2, x3, r, resultsR);
            return;
        }
        CheckLengths(n, x0.Length, x1.Length, x2.Length, x3.Length, Math.Min(resultsQ.Length, resultsR.Length));
        ref var p0 = ref MemoryMarshal.GetReference(x0);
        ref var p1 = ref MemoryMarshal.GetReference(x1);
        ref var p2 = ref MemoryMarshal.GetReference(x2);
        ref var p3 = ref MemoryMarshal.GetReference(x3);
        ref var qs = ref MemoryMarshal.GetReference(q);
        ref var rs = ref MemoryMarshal.GetReference(r);
        // As the one-query kernel: two chains a row (values i and i + 16 of each 32-value step), here per query.
        Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
        Vector512<float> e0 = default, e1 = default, f0 = default, f1 = default, g0 = default, g1 = default, h0 = default, h1 = default;
        for (nuint i = 0, end = (nuint)n; i < end; i += 32)
        {
            var (q0, q1) = (Vector512.LoadUnsafe(ref qs, i), Vector512.LoadUnsafe(ref qs, i + 16));
            var (r0, r1) = (Vector512.LoadUnsafe(ref rs, i), Vector512.LoadUnsafe(ref rs, i + 16));
            var (v, w) = (Vector512.LoadUnsafe(ref p0, i), Vector512.LoadUnsafe(ref p0, i + 16));
            a0 = Square(v - q0, a0); a1 = Square(w - q1, a1); e0 = Square(v - r0, e0); e1 = Square(w - r1, e1);
            (v, w) = (Vector512.LoadUnsafe(ref p1, i), Vector512.LoadUnsafe(ref p1, i + 16));
            b0 = Square(v - q0, b0); b1 = Square(w - q1, b1); f0 = Square(v - r0, f0); f1 = Square(w - r1, f1);
            (v, w) = (Vector512.LoadUnsafe(ref p2, i), Vector512.LoadUnsafe(ref p2, i + 16));
            c0 = Square(v - q0, c0); c1 = Square(w - q1, c1); g0 = Square(v - r0, g0); g1 = Square(w - r1, g1);
            (v, w) = (Vector512.LoadUnsafe(ref p3, i), Vector512.LoadUnsafe(ref p3, i + 16));
            d0 = Square(v - q0, d0); d1 = Square(w - q1, d1); h0 = Square(v - r0, h0); h1 = Square(w - r1, h1);
        }
        (resultsQ[0], resultsQ[1], resultsQ[2], resultsQ[3]) = (Vector512.Sum(a0 + a1), Vector512.Sum(b0 + b1), Vector512.Sum(c0 + c1), Vector512.Sum(d0 + d1));
        (resultsR[0], resultsR[1], resultsR[2], resultsR[3]) = (Vector512.Sum(e0 + e1), Vector512.Sum(f0 + f1), Vector512.Sum(g0 + g1), Vector512.Sum(h0 + h1));
    }

    /// <summary><see cref="Dots(ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{float}, Span{float})"/>
    /// of four fp16 rows against two queries (each in its scaled split layout).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dots(ReadOnlySpan<Half> x0, ReadOnlySpan<Half> x1, ReadOnlySpan<Half> x2, ReadOnlySpan<Half> x3,
        ReadOnlySpan<float> scaledSplitQ, ReadOnlySpan<float> scaledSplitR, Span<float> resultsQ, Span<float> resultsR)
    {
        var n = scaledSplitQ.Length;
        if (!Vector512.IsHardwareAccelerated || n == 0 || n % HalfBlock != 0 || scaledSplitR.Length != n)
        {
            Dots(x0, x1, x2, x3, scaledSplitQ, resultsQ);
            Dots(x0, x1, x2, x3, scaledSplitR, resultsR);
            return;
        }
        CheckLengths(n, x0.Length, x1.Length, x2.Length, x3.Length, Math.Min(resultsQ.Length, resultsR.Length));
        ref var p0 = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x0));
        ref var p1 = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x1));
        ref var p2 = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x2));
        ref var p3 = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x3));
        ref var qs = ref MemoryMarshal.GetReference(scaledSplitQ);
        ref var rs = ref MemoryMarshal.GetReference(scaledSplitR);
        var mask = Vector512.Create(HalfBits);
        Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
        Vector512<float> e0 = default, e1 = default, f0 = default, f1 = default, g0 = default, g1 = default, h0 = default, h1 = default;
        for (nuint i = 0, end = (nuint)n; i < end; i += HalfBlock)
        {
            var (q0, q1) = (Vector512.LoadUnsafe(ref qs, i), Vector512.LoadUnsafe(ref qs, i + 16));
            var (r0, r1) = (Vector512.LoadUnsafe(ref rs, i), Vector512.LoadUnsafe(ref rs, i + 16));
            var w = Vector512.LoadUnsafe(ref p0, i / 2);
            var (lo, hi) = (Low(w, mask), High(w, mask));
            a0 = Vector512.FusedMultiplyAdd(lo, q0, a0); a1 = Vector512.FusedMultiplyAdd(hi, q1, a1);
            e0 = Vector512.FusedMultiplyAdd(lo, r0, e0); e1 = Vector512.FusedMultiplyAdd(hi, r1, e1);
            w = Vector512.LoadUnsafe(ref p1, i / 2);
            (lo, hi) = (Low(w, mask), High(w, mask));
            b0 = Vector512.FusedMultiplyAdd(lo, q0, b0); b1 = Vector512.FusedMultiplyAdd(hi, q1, b1);
            f0 = Vector512.FusedMultiplyAdd(lo, r0, f0); f1 = Vector512.FusedMultiplyAdd(hi, r1, f1);
            w = Vector512.LoadUnsafe(ref p2, i / 2);
            (lo, hi) = (Low(w, mask), High(w, mask));
            c0 = Vector512.FusedMultiplyAdd(lo, q0, c0); c1 = Vector512.FusedMultiplyAdd(hi, q1, c1);
            g0 = Vector512.FusedMultiplyAdd(lo, r0, g0); g1 = Vector512.FusedMultiplyAdd(hi, r1, g1);
            w = Vector512.LoadUnsafe(ref p3, i / 2);
            (lo, hi) = (Low(w, mask), High(w, mask));
            d0 = Vector512.FusedMultiplyAdd(lo, q0, d0); d1 = Vector512.FusedMultiplyAdd(hi, q1, d1);
            h0 = Vector512.FusedMultiplyAdd(lo, r0, h0); h1 = Vector512.FusedMultiplyAdd(hi, r1, h1);
        }
        // The one-query kernel adds its (here empty) scalar tail's 0f to each sum, which turns a -0 into +0: so here.
        (resultsQ[0], resultsQ[1], resultsQ[2], resultsQ[3]) = (Vector512.Sum(a0 + a1) + 0f, Vector512.Sum(b0 + b1) + 0f, Vector512.Sum(c0 + c1) + 0f, Vector512.Sum(d0 + d1) + 0f);
        (resultsR[0], resultsR[1], resultsR[2], resultsR[3]) = (Vector512.Sum(e0 + e1) + 0f, Vector512.Sum(f0 + f1) + 0f, Vector512.Sum(g0 + g1) + 0f, Vector512.Sum(h0 + h1) + 0f);
    }

    /// <summary><see cref="Dots(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{short}, Span{long})"/>
    /// of four uint8 rows against two int16 queries (each in its split layout). Integer sums are exact, so any order
    /// gives the same results; the int lanes are flushed to long as often as in the one-query kernel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dots(ReadOnlySpan<byte> u0, ReadOnlySpan<byte> u1, ReadOnlySpan<byte> u2, ReadOnlySpan<byte> u3,
        ReadOnlySpan<short> splitQ, ReadOnlySpan<short> splitR, Span<long> resultsQ, Span<long> resultsR)
    {
        var n = splitQ.Length;
        if (!Avx512BW.IsSupported || !Vector512.IsHardwareAccelerated || n == 0 || n % ByteBlock != 0 || splitR.Length != n)
        {
            Dots(u0, u1, u2, u3, splitQ, resultsQ);
            Dots(u0, u1, u2, u3, splitR, resultsR);
            return;
        }
        CheckLengths(n, u0.Length, u1.Length, u2.Length, u3.Length, Math.Min(resultsQ.Length, resultsR.Length));
        ref var p0 = ref Unsafe.As<byte, short>(ref MemoryMarshal.GetReference(u0));
        ref var p1 = ref Unsafe.As<byte, short>(ref MemoryMarshal.GetReference(u1));
        ref var p2 = ref Unsafe.As<byte, short>(ref MemoryMarshal.GetReference(u2));
        ref var p3 = ref Unsafe.As<byte, short>(ref MemoryMarshal.GetReference(u3));
        ref var qs = ref MemoryMarshal.GetReference(splitQ);
        ref var rs = ref MemoryMarshal.GetReference(splitR);
        var low = Vector512.Create((short)0xFF);
        long s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
        nuint i = 0, end = (nuint)n;
        while (i < end)
        {
            Vector512<int> a = default, b = default, c = default, d = default, e = default, f = default, g = default, h = default;
            var stop = Math.Min(end, i + 32 * ByteBlock);
            for (; i < stop; i += ByteBlock)
            {
                var (q0, q1) = (Vector512.LoadUnsafe(ref qs, i), Vector512.LoadUnsafe(ref qs, i + 32));
                var (r0, r1) = (Vector512.LoadUnsafe(ref rs, i), Vector512.LoadUnsafe(ref rs, i + 32));
                var w = Vector512.LoadUnsafe(ref p0, i / 2);
                var (lo, hi) = (w & low, Vector512.ShiftRightLogical(w, 8));
                a += Avx512BW.MultiplyAddAdjacent(lo, q0) + Avx512BW.MultiplyAddAdjacent(hi, q1);
                e += Avx512BW.MultiplyAddAdjacent(lo, r0) + Avx512BW.MultiplyAddAdjacent(hi, r1);
                w = Vector512.LoadUnsafe(ref p1, i / 2);
                (lo, hi) = (w & low, Vector512.ShiftRightLogical(w, 8));
                b += Avx512BW.MultiplyAddAdjacent(lo, q0) + Avx512BW.MultiplyAddAdjacent(hi, q1);
                f += Avx512BW.MultiplyAddAdjacent(lo, r0) + Avx512BW.MultiplyAddAdjacent(hi, r1);
                w = Vector512.LoadUnsafe(ref p2, i / 2);
                (lo, hi) = (w & low, Vector512.ShiftRightLogical(w, 8));
                c += Avx512BW.MultiplyAddAdjacent(lo, q0) + Avx512BW.MultiplyAddAdjacent(hi, q1);
                g += Avx512BW.MultiplyAddAdjacent(lo, r0) + Avx512BW.MultiplyAddAdjacent(hi, r1);
                w = Vector512.LoadUnsafe(ref p3, i / 2);
                (lo, hi) = (w & low, Vector512.ShiftRightLogical(w, 8));
                d += Avx512BW.MultiplyAddAdjacent(lo, q0) + Avx512BW.MultiplyAddAdjacent(hi, q1);
                h += Avx512BW.MultiplyAddAdjacent(lo, r0) + Avx512BW.MultiplyAddAdjacent(hi, r1);
            }
            s0 += Sum(a); s1 += Sum(b); s2 += Sum(c); s3 += Sum(d);
            t0 += Sum(e); t1 += Sum(f); t2 += Sum(g); t3 += Sum(h);
        }
        (resultsQ[0], resultsQ[1], resultsQ[2], resultsQ[3]) = (s0, s1, s2, s3);
        (resultsR[0], resultsR[1], resultsR[2], resultsR[3]) = (t0, t1, t2, t3);
    }
}

/// <summary>
/// One row against four queries in AVX2 (Vector256, the path the one-query kernels take where Vector512 is not
/// accelerated): the row is loaded (and widened) once for the four. AVX2 has 16 vector registers, too few for the
/// four-row, two-query tile of the AVX-512 forms. Each (row, query) pair keeps the accumulators, the order of its sums
/// and the final reduction of the one-query kernel's Vector256 path, so results are bit for bit that kernel's. They
/// return false, writing nothing, where that path is not the one the one-query kernel takes or the length leaves a tail.
/// </summary>
public static partial class VectorKernels
{
    /// <summary>Whether the one-query kernels run their Vector256 paths here (no accelerated Vector512).</summary>
    static bool Avx2Path => !Vector512.IsHardwareAccelerated && Vector256.IsHardwareAccelerated;

    /// <summary><see cref="SquaredDistances"/> of row <paramref name="x"/> against queries a, b, c and d into results[0..3]
    /// (the whole row as one segment of <see cref="SquaredDistancesSegment"/>).</summary>
    public static bool TrySquaredDistances(ReadOnlySpan<float> x, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c,
        ReadOnlySpan<float> d, Span<float> results)
    {
        var n = x.Length;
        if (!SegmentsFor(n, 4) || a.Length != n || b.Length != n || c.Length != n || d.Length != n || results.Length < 4) return false;
        Span<Vector256<float>> state = stackalloc Vector256<float>[SegmentState];
        state.Clear();
        SquaredDistancesSegment(x, a, b, c, d, 0, n, state);
        SquaredDistancesFinish(state, results);
        return true;
    }

    /// <summary>The fp16 <see cref="Dots(ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{Half}, ReadOnlySpan{float}, Span{float})"/>
    /// of row <paramref name="x"/> against four queries (scaled, split) into results[0..3] (one segment of
    /// <see cref="DotsSegment(ReadOnlySpan{Half}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, Span{Vector256{float}})"/>).</summary>
    public static bool TryDots(ReadOnlySpan<Half> x, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c,
        ReadOnlySpan<float> d, Span<float> results)
    {
        var n = x.Length;
        if (!SegmentsFor(n, 2) || a.Length != n || b.Length != n || c.Length != n || d.Length != n || results.Length < 4) return false;
        Span<Vector256<float>> state = stackalloc Vector256<float>[SegmentState];
        state.Clear();
        DotsSegment(x, a, b, c, d, 0, n, state);
        DotsFinish(state, results);
        return true;
    }

    /// <summary>The uint8 <see cref="Dots(ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, ReadOnlySpan{short}, Span{long})"/>
    /// of row <paramref name="u"/> against four int16 queries (split) into results[0..3]: exact (one segment of
    /// <see cref="DotsSegment(ReadOnlySpan{byte}, ReadOnlySpan{short}, ReadOnlySpan{short}, ReadOnlySpan{short}, ReadOnlySpan{short}, int, int, Span{Vector256{float}})"/>).</summary>
    public static bool TryDots(ReadOnlySpan<byte> u, ReadOnlySpan<short> a, ReadOnlySpan<short> b, ReadOnlySpan<short> c,
        ReadOnlySpan<short> d, Span<long> results)
    {
        var n = u.Length;
        if (!SegmentsFor(n, 1) || a.Length != n || b.Length != n || c.Length != n || d.Length != n || results.Length < 4) return false;
        Span<Vector256<float>> state = stackalloc Vector256<float>[SegmentState];
        state.Clear();
        DotsSegment(u, a, b, c, d, 0, n, state);
        DotsFinish(state, results);
        return true;
    }
}
