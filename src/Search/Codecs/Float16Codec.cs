using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AlexNet.Search.Codecs;

/// <summary>
/// <see cref="VectorStorage.Float16"/>: an fp16 copy of each row (clamped to +-<see cref="VectorKernels.HalfMax"/>,
/// never infinity) and its squared norm |x|^2; |x - q|^2 is expanded as |x|^2 - 2 x.q + |q|^2, so the kernel does one
/// product a value. The query is clamped as stored values are (so the scaled query stays finite) and written times
/// 2^112 in the kernel's layout (<see cref="VectorKernels.SplitPairs{T}"/>).
/// </summary>
readonly struct Float16Codec(Aligned<float> split, double squaredNorm) : IRowCodec<Float16Codec, Half>
{
    /// <summary>The query as the kernel reads it (for a partner query's <see cref="Kernel4x2"/>).</summary>
    Aligned<float> Split => split;

    public static bool ScansExactRows => false;
    public static int ParametersPerRow => 1;   // |fp16 row|^2
    public static long ScanBytesPerRow(int dim) => 2L * dim;

    public static void Encode(ReadOnlySpan<float> vector, Span<Half> code, Span<float> parameters)
    {
        double norm = 0;
        for (var i = 0; i < vector.Length; i++)
        {
            code[i] = (Half)Math.Clamp(vector[i], -VectorKernels.HalfMax, VectorKernels.HalfMax);
            norm += (double)(float)code[i] * (float)code[i];
        }
        parameters[0] = (float)norm;
    }

    public static Float16Codec Prepare(ReadOnlySpan<float> query, Aligned<float> values, QueryBuffers buffers)
    {
        var n = query.Length;
        var buffer = Aligned<float>.In(ref buffers.Floats, n);
        var split = buffer.Span;
        double norm = 0;   // of the values as the kernel sees them (clamped)
        for (var i = 0; i < n; i++)
        {
            var v = Math.Clamp(query[i], -VectorKernels.HalfMax, VectorKernels.HalfMax);
            norm += (double)v * v;
            split[VectorKernels.SplitIndex(i, n, VectorKernels.HalfBlock)] = v * VectorKernels.HalfQueryScale;
        }
        return new(buffer, norm);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Kernel4(ReadOnlySpan<Half> x0, ReadOnlySpan<Half> x1, ReadOnlySpan<Half> x2, ReadOnlySpan<Half> x3, Span<double> raw)
    {
        Four<float> d = default;
        VectorKernels.Dots(x0, x1, x2, x3, split.Span, d);
        (raw[0], raw[1], raw[2], raw[3]) = (d[0], d[1], d[2], d[3]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Kernel4x2(in Float16Codec other, ReadOnlySpan<Half> x0, ReadOnlySpan<Half> x1, ReadOnlySpan<Half> x2, ReadOnlySpan<Half> x3,
        Span<double> raw, Span<double> rawOther)
    {
        Four<float> d = default, e = default;
        VectorKernels.Dots(x0, x1, x2, x3, split.Span, other.Split.Span, d, e);
        (raw[0], raw[1], raw[2], raw[3]) = (d[0], d[1], d[2], d[3]);
        (rawOther[0], rawOther[1], rawOther[2], rawOther[3]) = (e[0], e[1], e[2], e[3]);
    }

    public void Kernel4x4(in Float16Codec b, in Float16Codec c, in Float16Codec d, ReadOnlySpan<Half> x0, ReadOnlySpan<Half> x1, ReadOnlySpan<Half> x2, ReadOnlySpan<Half> x3,
        Span<double> raw, Span<double> rawB, Span<double> rawC, Span<double> rawD)
    {
        Four<float> t = default;
        for (var r = 0; r < 4; r++)
        {
            if (!VectorKernels.TryDots(r switch { 0 => x0, 1 => x1, 2 => x2, _ => x3 }, split.Span, b.Split.Span, c.Split.Span, d.Split.Span, t))
            {
                Kernel4x2(b, x0, x1, x2, x3, raw, rawB);
                c.Kernel4x2(d, x0, x1, x2, x3, rawC, rawD);
                return;
            }
            (raw[r], rawB[r], rawC[r], rawD[r]) = (t[0], t[1], t[2], t[3]);
        }
    }

    public static int SegmentValues(int dim) =>
        VectorKernels.SegmentsFor(dim, 2) ? Math.Max(1, VectorKernels.SegmentQueryBytes / 4 / VectorKernels.SegmentStep(2)) * VectorKernels.SegmentStep(2) : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Segment4(in Float16Codec b, in Float16Codec c, in Float16Codec d, ReadOnlySpan<Half> row, int from, int to, Span<Vector256<float>> state) =>
        VectorKernels.DotsSegment(row, split.Span, b.Split.Span, c.Split.Span, d.Split.Span, from, to, state);

    public void Finish4(in Float16Codec b, in Float16Codec c, in Float16Codec d, ReadOnlySpan<Vector256<float>> state, Span<double> raw)
    {
        Four<float> t = default;
        VectorKernels.DotsFinish(state, t);
        (raw[0], raw[1], raw[2], raw[3]) = (t[0], t[1], t[2], t[3]);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Distance(double raw, ReadOnlySpan<float> parameters, int i) => (float)(parameters[i] - 2.0 * raw + squaredNorm);
}
