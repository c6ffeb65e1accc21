using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AlexNet.Search.Codecs;

/// <summary><see cref="VectorStorage.Float32"/>: the scan reads the fp32 rows themselves and the kernel gives the
/// squared distance (summed in its own order; the re-rank reports <c>TensorPrimitives.Distance</c>).</summary>
readonly struct Float32Codec(Aligned<float> values) : IRowCodec<Float32Codec, float>
{
    /// <summary>The query as the kernel reads it (for a partner query's <see cref="Kernel4x2"/>).</summary>
    Aligned<float> Values => values;

    public static bool ScansExactRows => true;
    public static int ParametersPerRow => 0;
    public static long ScanBytesPerRow(int dim) => 4L * dim;

    /// <summary>The code is the row (never called: the index keeps no second copy, <see cref="ScansExactRows"/>).</summary>
    public static void Encode(ReadOnlySpan<float> vector, Span<float> code, Span<float> parameters) => vector.CopyTo(code);

    public static Float32Codec Prepare(ReadOnlySpan<float> query, Aligned<float> values, QueryBuffers buffers) => new(values);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Kernel4(ReadOnlySpan<float> x0, ReadOnlySpan<float> x1, ReadOnlySpan<float> x2, ReadOnlySpan<float> x3, Span<double> raw)
    {
        Four<float> d = default;
        VectorKernels.SquaredDistances(x0, x1, x2, x3, values.Span, d);
        (raw[0], raw[1], raw[2], raw[3]) = (d[0], d[1], d[2], d[3]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Kernel4x2(in Float32Codec other, ReadOnlySpan<float> x0, ReadOnlySpan<float> x1, ReadOnlySpan<float> x2, ReadOnlySpan<float> x3,
        Span<double> raw, Span<double> rawOther)
    {
        Four<float> d = default, e = default;
        VectorKernels.SquaredDistances(x0, x1, x2, x3, values.Span, other.Values.Span, d, e);
        (raw[0], raw[1], raw[2], raw[3]) = (d[0], d[1], d[2], d[3]);
        (rawOther[0], rawOther[1], rawOther[2], rawOther[3]) = (e[0], e[1], e[2], e[3]);
    }

    public void Kernel4x4(in Float32Codec b, in Float32Codec c, in Float32Codec d, ReadOnlySpan<float> x0, ReadOnlySpan<float> x1, ReadOnlySpan<float> x2, ReadOnlySpan<float> x3,
        Span<double> raw, Span<double> rawB, Span<double> rawC, Span<double> rawD)
    {
        Four<float> t = default;
        for (var r = 0; r < 4; r++)
        {
            if (!VectorKernels.TrySquaredDistances(r switch { 0 => x0, 1 => x1, 2 => x2, _ => x3 }, values.Span, b.Values.Span, c.Values.Span, d.Values.Span, t))
            {
                Kernel4x2(b, x0, x1, x2, x3, raw, rawB);
                c.Kernel4x2(d, x0, x1, x2, x3, rawC, rawD);
                return;
            }
            (raw[r], rawB[r], rawC[r], rawD[r]) = (t[0], t[1], t[2], t[3]);
        }
    }

    public static int SegmentValues(int dim) =>
        VectorKernels.SegmentsFor(dim, 4) ? Math.Max(1, VectorKernels.SegmentQueryBytes / 4 / VectorKernels.SegmentStep(4)) * VectorKernels.SegmentStep(4) : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Segment4(in Float32Codec b, in Float32Codec c, in Float32Codec d, ReadOnlySpan<float> row, int from, int to, Span<Vector256<float>> state) =>
        VectorKernels.SquaredDistancesSegment(row, values.Span, b.Values.Span, c.Values.Span, d.Values.Span, from, to, state);

    public void Finish4(in Float32Codec b, in Float32Codec c, in Float32Codec d, ReadOnlySpan<Vector256<float>> state, Span<double> raw)
    {
        Four<float> t = default;
        VectorKernels.SquaredDistancesFinish(state, t);
        (raw[0], raw[1], raw[2], raw[3]) = (t[0], t[1], t[2], t[3]);
    }

    public float Distance(double raw, ReadOnlySpan<float> parameters, int i) => (float)raw;   // a cast: inlined unasked
}
