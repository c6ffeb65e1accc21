using AlexNet.Model.Onnx;
using AlexNet.Model.Onnx.Quantization;

namespace AlexNet.Model.Tests;

/// <summary>The arithmetic of quantize's parameters: activation scale and zero point, per-channel symmetric weights.</summary>
public sealed class QuantizationMathTests
{
    [Theory]
    [InlineData(0f, 6f)]          // after a ReLU
    [InlineData(-2.1f, 3.7f)]     // a normalised input
    [InlineData(0.5f, 9f)]        // all positive: widened to hold 0
    [InlineData(-4f, -1f)]        // all negative: widened to hold 0
    public void ZeroIsExactAndTheRangeFitsIn256Steps(float min, float max)
    {
        var p = ActivationParams.From(new TensorRange(min, max));
        var (lo, hi) = (Math.Min(min, 0f), Math.Max(max, 0f));
        Assert.Equal((hi - lo) / 255f, p.Scale, 6);
        Assert.InRange((0 - p.ZeroPoint) * p.Scale, lo - p.Scale, lo + p.Scale);          // the lowest step reaches the minimum
        Assert.InRange((255 - p.ZeroPoint) * p.Scale, hi - p.Scale, hi + p.Scale);        // and the highest the maximum
    }

    [Fact]
    public void AnEmptyRangeGetsAUsableScale()
    {
        var p = ActivationParams.From(new TensorRange(0f, 0f));
        Assert.True(p.Scale > 0);
        Assert.Equal(0, p.ZeroPoint);
    }

    [Theory]
    [InlineData(8, 127)]
    [InlineData(7, 63)]
    public void WeightsAreSymmetricPerOutputChannelAndTheLargestMapsToTheEnd(int bits, int qmax)
    {
        // Three output channels of 2x1x1: one with a large weight, one small, one all zero.
        float[] w = [0.5f, -1.0f, 0.01f, -0.02f, 0f, 0f];
        var init = Initializer("w", w, 3, 2, 1, 1);
        var (q, scales) = QdqWriter.QuantizeWeight(init, axis: 0, bits);
        Assert.Equal(3, scales.Length);
        Assert.Equal(1.0f / qmax, scales[0], 6);
        Assert.Equal(0.02f / qmax, scales[1], 6);
        Assert.Equal(-qmax, q[1]);                                   // each channel's largest magnitude is the end of the range
        Assert.Equal(-qmax, q[3]);
        Assert.Equal(0, q[4]);
        Assert.Equal(0, q[5]);
        Assert.True(scales[2] > 0);                                  // an all-zero channel still gets a scale DequantizeLinear accepts
        for (var i = 0; i < w.Length; i++) Assert.True(Math.Abs(w[i] - q[i] * scales[i / 2]) <= scales[i / 2] / 2 + 1e-7f);
    }

    [Fact]
    public void GemmWeightsWithoutTransposeArePerColumn()
    {
        // (in 2, out 3), transB = 0: a channel is a column.
        float[] w = [1f, 0.1f, 0f, -2f, 0.2f, 0f];
        var (q, scales) = QdqWriter.QuantizeWeight(Initializer("w", w, 2, 3), axis: 1, 8);
        Assert.Equal([2f / 127, 0.2f / 127], scales[..2]);
        Assert.Equal(-127, q[3]);
        Assert.Equal(127, q[4]);
    }

    static OnnxInitializer Initializer(string name, float[] values, params long[] dims)
    {
        var field = OnnxGraphDocument.InitializerField(name, OnnxTypes.Float, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()), dims);
        var doc = new OnnxModelBuilder().Initializer(name, values, dims).GraphFields();
        var parsed = ProtoReader.Fields(doc).Single();
        Assert.Equal(field, parsed.Raw.ToArray());
        return new OnnxInitializer(name, OnnxTypes.Float, dims, parsed, External: false);
    }
}
