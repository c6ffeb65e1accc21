using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNet.Search;

/// <summary>
/// The AVX2 one-row, four-query kernels blocked over the dimensions, for searches answered together: a call scores
/// values [from, to) of one row against four queries and carries each (row, query) pair's accumulators in
/// <c>state</c> (eight Vector256 slots a row) to the call for the next segment; <c>Finish</c> reduces them as the
/// one-query kernel does. A pass then keeps the four queries' segments in L1 while a chunk of rows goes by, instead of
/// reading each query's whole vector (16 KB in fp32) from L2 for every row. The accumulators take the same sums in the
/// same order whatever the segments, so the results are bit for bit the one-query kernel's Vector256 path
/// (<see cref="TrySquaredDistances"/> and <see cref="TryDots(ReadOnlySpan{Half}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>
/// are one segment of the whole row). Segment bounds are multiples of the kernel's step (<see cref="SegmentStep"/>);
/// the row's length too (no tail), and the path is the AVX2 one: see <see cref="SegmentsFor"/>.
/// </summary>
public static partial class VectorKernels
{
    /// <summary>About how many bytes of each query a segment spans: four queries' segments (16 KB) stay in a 32 KB L1
    /// beside the rows' segments streaming through.</summary>
    public const int SegmentQueryBytes = 4 << 10;

    /// <summary>Vector256 slots of carried state per row of a segmented four-query call.</summary>
    public const int SegmentState = 8;

    /// <summary>The step of the segmented kernels for rows of <paramref name="bytesPerValue"/> (4: fp32, 2: fp16,
    /// 1: uint8): segment bounds and the row length are multiples of it.</summary>
    public static int SegmentStep(int bytesPerValue) => bytesPerValue switch { 4 => 16, 2 => HalfBlock, _ => ByteBlock };

    /// <summary>Whether the segmented kernels for rows of <paramref name="n"/> values of <paramref name="bytesPerValue"/>
    /// run here: the one-query kernels take their Vector256 paths (AVX2, no accelerated Vector512) and n is a whole
    /// number of steps.</summary>
    public static bool SegmentsFor(int n, int bytesPerValue) =>
        n > 0 && n % SegmentStep(bytesPerValue) == 0 &&
        (bytesPerValue == 1 ? Avx2.IsSupported && !(Avx512BW.IsSupported && Vector512.IsHardwareAccelerated) : Avx2Path);

    /// <summary>Inlined into each segment call (step is a constant there: the modulo is a mask); the messages are built
    /// only for a bad call.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void CheckSegment(int n, int from, int to, int step, int l0, int l1, int l2, int l3, int state)
    {
        if (l0 != n || l1 != n || l2 != n || l3 != n || (uint)from > (uint)to || to > n || from % step != 0 || to % step != 0 || state < SegmentState)
            SegmentRefused(n, from, to, step, l0, l1, l2, l3, state);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void SegmentRefused(int n, int from, int to, int step, int l0, int l1, int l2, int l3, int state)
    {
        if (l0 != n || l1 != n || l2 != n || l3 != n) throw new ArgumentException($"Queries of {l0}, {l1}, {l2} and {l3} values against a row of {n}.");
        if (state < SegmentState) throw new ArgumentException($"{SegmentState} state slots are carried.");
        throw new ArgumentException($"Segment [{from}, {to}) of a row of {n}: bounds must be multiples of {step}.");
    }

    // ---- fp32 -------------------------------------------------------------------------------------------------

    /// <summary>Values [from, to) of <see cref="TrySquaredDistances"/> (row <paramref name="x"/> against queries a .. d),
    /// carried in <paramref name="state"/> (zeros before the first segment).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SquaredDistancesSegment(ReadOnlySpan<float> x, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c,
        ReadOnlySpan<float> d, int from, int to, Span<Vector256<float>> state)
    {
        CheckSegment(x.Length, from, to, 16, a.Length, b.Length, c.Length, d.Length, state.Length);
        ref var xs = ref MemoryMarshal.GetReference(x);
        ref var pa = ref MemoryMarshal.GetReference(a);
        ref var pb = ref MemoryMarshal.GetReference(b);
        ref var pc = ref MemoryMarshal.GetReference(c);
        ref var pd = ref MemoryMarshal.GetReference(d);
        ref var s = ref MemoryMarshal.GetReference(state);
        var (a0, a1, b0, b1) = (s, Unsafe.Add(ref s, 1), Unsafe.Add(ref s, 2), Unsafe.Add(ref s, 3));
        var (c0, c1, d0, d1) = (Unsafe.Add(ref s, 4), Unsafe.Add(ref s, 5), Unsafe.Add(ref s, 6), Unsafe.Add(ref s, 7));
        for (nuint i = (nuint)from, end = (nuint)to; i < end; i += 16)
        {
            var (v, w) = (Vector256.LoadUnsafe(ref xs, i), Vector256.LoadUnsafe(ref xs, i + 8));
            a0 = Square(v - Vector256.LoadUnsafe(ref pa, i), a0); a1 = Square(w - Vector256.LoadUnsafe(ref pa, i + 8), a1);
            b0 = Square(v - Vector256.LoadUnsafe(ref pb, i), b0); b1 = Square(w - Vector256.LoadUnsafe(ref pb, i + 8), b1);
            c0 = Square(v - Vector256.LoadUnsafe(ref pc, i), c0); c1 = Square(w - Vector256.LoadUnsafe(ref pc, i + 8), c1);
            d0 = Square(v - Vector256.LoadUnsafe(ref pd, i), d0); d1 = Square(w - Vector256.LoadUnsafe(ref pd, i + 8), d1);
        }
        (s, Unsafe.Add(ref s, 1), Unsafe.Add(ref s, 2), Unsafe.Add(ref s, 3)) = (a0, a1, b0, b1);
        (Unsafe.Add(ref s, 4), Unsafe.Add(ref s, 5), Unsafe.Add(ref s, 6), Unsafe.Add(ref s, 7)) = (c0, c1, d0, d1);
    }

    /// <summary>The four squared distances from a row's carried <paramref name="state"/>, reduced as the one-query kernel.</summary>
    public static void SquaredDistancesFinish(ReadOnlySpan<Vector256<float>> state, Span<float> results) =>
        (results[0], results[1], results[2], results[3]) = (Vector256.Sum(state[0] + state[1]), Vector256.Sum(state[2] + state[3]),
            Vector256.Sum(state[4] + state[5]), Vector256.Sum(state[6] + state[7]));

    // ---- fp16 -------------------------------------------------------------------------------------------------

    /// <summary>Values [from, to) of the fp16 <see cref="TryDots(ReadOnlySpan{Half}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float})"/>
    /// (queries scaled, split), carried in <paramref name="state"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotsSegment(ReadOnlySpan<Half> x, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c,
        ReadOnlySpan<float> d, int from, int to, Span<Vector256<float>> state)
    {
        CheckSegment(x.Length, from, to, HalfBlock, a.Length, b.Length, c.Length, d.Length, state.Length);
        ref var xs = ref Unsafe.As<Half, int>(ref MemoryMarshal.GetReference(x));
        ref var pa = ref MemoryMarshal.GetReference(a);
        ref var pb = ref MemoryMarshal.GetReference(b);
        ref var pc = ref MemoryMarshal.GetReference(c);
        ref var pd = ref MemoryMarshal.GetReference(d);
        ref var s = ref MemoryMarshal.GetReference(state);
        var mask = Vector256.Create(HalfBits);
        var (a0, a1, b0, b1) = (s, Unsafe.Add(ref s, 1), Unsafe.Add(ref s, 2), Unsafe.Add(ref s, 3));
        var (c0, c1, d0, d1) = (Unsafe.Add(ref s, 4), Unsafe.Add(ref s, 5), Unsafe.Add(ref s, 6), Unsafe.Add(ref s, 7));
        for (nuint i = (nuint)from, end = (nuint)to; i < end; i += HalfBlock)
        {
            // As the one-query kernel: words i/2 .. i/2+7 hold halves i .. i+15, words i/2+8 .. i/2+15 halves i+16 .. i+31
            var (w, v) = (Vector256.LoadUnsafe(ref xs, i / 2), Vector256.LoadUnsafe(ref xs, i / 2 + 8));
            var (lw, lv, hw, hv) = (Low(w, mask), Low(v, mask), High(w, mask), High(v, mask));
            a0 = Vector256.FusedMultiplyAdd(lw, Vector256.LoadUnsafe(ref pa, i), a0); a1 = Vector256.FusedMultiplyAdd(lv, Vector256.LoadUnsafe(ref pa, i + 8), a1);
            a0 = Vector256.FusedMultiplyAdd(hw, Vector256.LoadUnsafe(ref pa, i + 16), a0); a1 = Vector256.FusedMultiplyAdd(hv, Vector256.LoadUnsafe(ref pa, i + 24), a1);
            b0 = Vector256.FusedMultiplyAdd(lw, Vector256.LoadUnsafe(ref pb, i), b0); b1 = Vector256.FusedMultiplyAdd(lv, Vector256.LoadUnsafe(ref pb, i + 8), b1);
            b0 = Vector256.FusedMultiplyAdd(hw, Vector256.LoadUnsafe(ref pb, i + 16), b0); b1 = Vector256.FusedMultiplyAdd(hv, Vector256.LoadUnsafe(ref pb, i + 24), b1);
            c0 = Vector256.FusedMultiplyAdd(lw, Vector256.LoadUnsafe(ref pc, i), c0); c1 = Vector256.FusedMultiplyAdd(lv, Vector256.LoadUnsafe(ref pc, i + 8), c1);
            c0 = Vector256.FusedMultiplyAdd(hw, Vector256.LoadUnsafe(ref pc, i + 16), c0); c1 = Vector256.FusedMultiplyAdd(hv, Vector256.LoadUnsafe(ref pc, i + 24), c1);
            d0 = Vector256.FusedMultiplyAdd(lw, Vector256.LoadUnsafe(ref pd, i), d0); d1 = Vector256.FusedMultiplyAdd(lv, Vector256.LoadUnsafe(ref pd, i + 8), d1);
            d0 = Vector256.FusedMultiplyAdd(hw, Vector256.LoadUnsafe(ref pd, i + 16), d0); d1 = Vector256.FusedMultiplyAdd(hv, Vector256.LoadUnsafe(ref pd, i + 24), d1);
        }
        (s, Unsafe.Add(ref s, 1), Unsafe.Add(ref s, 2), Unsafe.Add(ref s, 3)) = (a0, a1, b0, b1);
        (Unsafe.Add(ref s, 4), Unsafe.Add(ref s, 5), Unsafe.Add(ref s, 6), Unsafe.Add(ref s, 7)) = (c0, c1, d0, d1);
    }

    /// <summary>The four fp16 dot products from a row's carried <paramref name="state"/>, reduced as the one-query kernel
    /// (which adds its empty scalar tail's 0f to each sum, turning a -0 into +0: so here).</summary>
    public static void DotsFinish(ReadOnlySpan<Vector256<float>> state, Span<float> results) =>
        (results[0], results[1], results[2], results[3]) = (Vector256.Sum(state[0] + state[1]) + 0f, Vector256.Sum(state[2] + state[3]) + 0f,
            Vector256.Sum(state[4] + state[5]) + 0f, Vector256.Sum(state[6] + state[7]) + 0f);

    // ---- uint8 ------------------------------------------------------------------------------------------------

    /// <summary>Values [from, to) of the uint8 <see cref="TryDots(ReadOnlySpan{byte}, ReadOnlySpan{short}, ReadOnlySpan{short}, ReadOnlySpan{short}, ReadOnlySpan{short}, Span{long})"/>
    /// (int16 queries, split), carried in <paramref name="state"/>[0] as four longs. Integer sums are exact, so any
    /// order gives the one-query kernel's results; the int lanes are flushed to long at least as often as there.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void DotsSegment(ReadOnlySpan<byte> u, ReadOnlySpan<short> a, ReadOnlySpan<short> b, ReadOnlySpan<short> c,
        ReadOnlySpan<short> d, int from, int to, Span<Vector256<float>> state)
    {
        CheckSegment(u.Length, from, to, ByteBlock, a.Length, b.Length, c.Length, d.Length, state.Length);
        ref var us = ref Unsafe.As<byte, short>(ref MemoryMarshal.GetReference(u));
        ref var pa = ref MemoryMarshal.GetReference(a);
        ref var pb = ref MemoryMarshal.GetReference(b);
        ref var pc = ref MemoryMarshal.GetReference(c);
        ref var pd = ref MemoryMarshal.GetReference(d);
        var low = Vector256.Create((short)0xFF);
        var sums = state[0].AsInt64();
        nuint i = (nuint)from, end = (nuint)to;
        while (i < end)
        {
            Vector256<int> sa = default, sb = default, sc = default, sd = default;
            var stop = Math.Min(end, i + 16 * ByteBlock);
            for (; i < stop; i += ByteBlock)
            {
                var (w, v) = (Vector256.LoadUnsafe(ref us, i / 2), Vector256.LoadUnsafe(ref us, i / 2 + 16));
                var (lw, lv, hw, hv) = (w & low, v & low, Vector256.ShiftRightLogical(w, 8), Vector256.ShiftRightLogical(v, 8));
                sa += (Avx2.MultiplyAddAdjacent(lw, Vector256.LoadUnsafe(ref pa, i)) + Avx2.MultiplyAddAdjacent(lv, Vector256.LoadUnsafe(ref pa, i + 16))) +
                    (Avx2.MultiplyAddAdjacent(hw, Vector256.LoadUnsafe(ref pa, i + 32)) + Avx2.MultiplyAddAdjacent(hv, Vector256.LoadUnsafe(ref pa, i + 48)));
                sb += (Avx2.MultiplyAddAdjacent(lw, Vector256.LoadUnsafe(ref pb, i)) + Avx2.MultiplyAddAdjacent(lv, Vector256.LoadUnsafe(ref pb, i + 16))) +
                    (Avx2.MultiplyAddAdjacent(hw, Vector256.LoadUnsafe(ref pb, i + 32)) + Avx2.MultiplyAddAdjacent(hv, Vector256.LoadUnsafe(ref pb, i + 48)));
                sc += (Avx2.MultiplyAddAdjacent(lw, Vector256.LoadUnsafe(ref pc, i)) + Avx2.MultiplyAddAdjacent(lv, Vector256.LoadUnsafe(ref pc, i + 16))) +
                    (Avx2.MultiplyAddAdjacent(hw, Vector256.LoadUnsafe(ref pc, i + 32)) + Avx2.MultiplyAddAdjacent(hv, Vector256.LoadUnsafe(ref pc, i + 48)));
                sd += (Avx2.MultiplyAddAdjacent(lw, Vector256.LoadUnsafe(ref pd, i)) + Avx2.MultiplyAddAdjacent(lv, Vector256.LoadUnsafe(ref pd, i + 16))) +
                    (Avx2.MultiplyAddAdjacent(hw, Vector256.LoadUnsafe(ref pd, i + 32)) + Avx2.MultiplyAddAdjacent(hv, Vector256.LoadUnsafe(ref pd, i + 48)));
            }
            sums += Vector256.Create(Sum(sa), Sum(sb), Sum(sc), Sum(sd));
        }
        state[0] = sums.AsSingle();
    }

    /// <summary>The four uint8 dot products from a row's carried <paramref name="state"/>.</summary>
    public static void DotsFinish(ReadOnlySpan<Vector256<float>> state, Span<long> results)
    {
        var sums = state[0].AsInt64();
        (results[0], results[1], results[2], results[3]) = (sums[0], sums[1], sums[2], sums[3]);
    }
}
