using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace AlexNet.Search.Codecs;

/// <summary>
/// <see cref="VectorStorage.Int8"/>: each row as uint8 u with x = offset + scale * u (offset = min, scale =
/// (max - min) / 255; post-ReLU rows get offset 0), kept with offset, scale and |dequantised row|^2. Then
/// x.q = offset sum(q) + scale u.q, and the kernel computes u.q exactly in integers against the query rounded to int16
/// (largest magnitude at 32767: relative rounding 1.5e-5, far below the uint8 storage's), scaled back by the query's
/// int16 scale.
/// </summary>
readonly struct Int8Codec(Aligned<short> int16, double int16Scale, double sum, double squaredNorm) : IRowCodec<Int8Codec, byte>
{
    /// <summary>The query as the kernel reads it, and its scale (for a partner query's <see cref="Kernel4x2"/>).</summary>
    Aligned<short> Int16 => int16;
    double Int16Scale => int16Scale;

    public static bool ScansExactRows => false;
    public static int ParametersPerRow => 3;   // offset, scale, |dequantised row|^2
    public static long ScanBytesPerRow(int dim) => dim + 12L;

    public static void Encode(ReadOnlySpan<float> vector, Span<byte> code, Span<float> parameters)
    {
        var (min, max) = (TensorPrimitives.Min(vector), TensorPrimitives.Max(vector));
        var scale = (max - min) / 255f;
        if (!(scale > 0) || !float.IsFinite(scale)) scale = 0;
        double norm = 0;
        for (var i = 0; i < vector.Length; i++)
        {
            var u = scale > 0 ? (byte)Math.Clamp(MathF.Round((vector[i] - min) / scale), 0, 255) : (byte)0;
            code[i] = u;
            var x = (double)min + (double)scale * u;
            norm += x * x;
        }
        (parameters[0], parameters[1], parameters[2]) = (min, scale, (float)norm);
    }

    public static Int8Codec Prepare(ReadOnlySpan<float> query, Aligned<float> values, QueryBuffers buffers)
    {
        var n = query.Length;
        var max = TensorPrimitives.MaxMagnitude(query);
        var scale = max > 0 && float.IsFinite(max) ? max / 32767.0 : 1;
        var buffer = Aligned<short>.In(ref buffers.Shorts, n);
        var int16 = buffer.Span;
        var inverse = 1 / scale;
        for (var i = 0; i < n; i++)
            int16[VectorKernels.SplitIndex(i, n, VectorKernels.ByteBlock)] = (short)Math.Clamp(Math.Round(query[i] * inverse), -32767, 32767);
        // fp32 sums: the dot products they enter are re-ranked exactly
        return new(buffer, scale, TensorPrimitives.Sum(query), TensorPrimitives.SumOfSquares(query));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Kernel4(ReadOnlySpan<byte> x0, ReadOnlySpan<byte> x1, ReadOnlySpan<byte> x2, ReadOnlySpan<byte> x3, Span<double> raw)
    {
        Four<long> dots = default;
        VectorKernels.Dots(x0, x1, x2, x3, int16.Span, dots);
        (raw[0], raw[1], raw[2], raw[3]) = (dots[0] * int16Scale, dots[1] * int16Scale, dots[2] * int16Scale, dots[3] * int16Scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Kernel4x2(in Int8Codec other, ReadOnlySpan<byte> x0, ReadOnlySpan<byte> x1, ReadOnlySpan<byte> x2, ReadOnlySpan<byte> x3,
        Span<double> raw, Span<double> rawOther)
    {
        Four<long> dots = default, others = default;
        VectorKernels.Dots(x0, x1, x2, x3, int16.Span, other.Int16.Span, dots, others);
        (raw[0], raw[1], raw[2], raw[3]) = (dots[0] * int16Scale, dots[1] * int16Scale, dots[2] * int16Scale, dots[3] * int16Scale);
        var s = other.Int16Scale;
        (rawOther[0], rawOther[1], rawOther[2], rawOther[3]) = (others[0] * s, others[1] * s, others[2] * s, others[3] * s);
    }

    public void Kernel4x4(in Int8Codec b, in Int8Codec c, in Int8Codec d, ReadOnlySpan<byte> x0, ReadOnlySpan<byte> x1, ReadOnlySpan<byte> x2, ReadOnlySpan<byte> x3,
        Span<double> raw, Span<double> rawB, Span<double> rawC, Span<double> rawD)
    {
        Four<long> t = default;
        for (var r = 0; r < 4; r++)
        {
            if (!VectorKernels.TryDots(r switch { 0 => x0, 1 => x1, 2 => x2, _ => x3 }, int16.Span, b.Int16.Span, c.Int16.Span, d.Int16.Span, t))
            {
                Kernel4x2(b, x0, x1, x2, x3, raw, rawB);
                c.Kernel4x2(d, x0, x1, x2, x3, rawC, rawD);
                return;
            }
            (raw[r], rawB[r], rawC[r], rawD[r]) = (t[0] * int16Scale, t[1] * b.Int16Scale, t[2] * c.Int16Scale, t[3] * d.Int16Scale);
        }
    }

    public static int SegmentValues(int dim) =>
        VectorKernels.SegmentsFor(dim, 1) ? Math.Max(1, VectorKernels.SegmentQueryBytes / 2 / VectorKernels.SegmentStep(1)) * VectorKernels.SegmentStep(1) : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Segment4(in Int8Codec b, in Int8Codec c, in Int8Codec d, ReadOnlySpan<byte> row, int from, int to, Span<Vector256<float>> state) =>
        VectorKernels.DotsSegment(row, int16.Span, b.Int16.Span, c.Int16.Span, d.Int16.Span, from, to, state);

    public void Finish4(in Int8Codec b, in Int8Codec c, in Int8Codec d, ReadOnlySpan<Vector256<float>> state, Span<double> raw)
    {
        Four<long> t = default;
        VectorKernels.DotsFinish(state, t);
        (raw[0], raw[1], raw[2], raw[3]) = (t[0] * int16Scale, t[1] * b.Int16Scale, t[2] * c.Int16Scale, t[3] * d.Int16Scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Distance(double raw, ReadOnlySpan<float> parameters, int i) =>
        (float)(parameters[3 * i + 2] - 2 * (parameters[3 * i] * sum + parameters[3 * i + 1] * raw) + squaredNorm);
}
