using System.Text.Json;

namespace AlexNet.Model.Onnx;

/// <summary>How LRN is written: ONNX's LRN operator per tower, or the equivalent banded 1x1 convolution (faster).</summary>
public enum LrnForm { BandedConv, Operator }

/// <summary>A named weight tensor: row-major values and their shape (PyTorch layout).</summary>
public sealed record WeightTensor(float[] Data, long[] Shape);

/// <summary>
/// Writes the two-tower AlexNet as one ONNX graph (opset 17). Weights come per tower with the paper's names
/// (<c>conv1a.weight</c>, <c>conv1b.weight</c>, ..., <c>fc8.weight</c>), as the training worker's model names them.
/// Tower-local layers (conv2, conv4, conv5) become grouped convolutions (group 2, tower a's kernels first); LRN stays
/// per tower (Split, LRN, LRN, Concat): one LRN over both towers' maps would mix them at the boundary channel.
/// </summary>
public static class AlexNetOnnxGraph
{
    // LRN constants of the paper (section 3.3): k = 2, n = 5, alpha = 1e-4, beta = 0.75. ONNX divides alpha by n,
    // as TorchSharp's LocalResponseNorm does.
    public const int LrnSize = 5;
    public const float LrnAlpha = 1e-4f, LrnBeta = 0.75f, LrnBias = 2f;

    /// <summary>
    /// Seeded random weights for a two-tower net of <paramref name="spec"/>, under the exporter's names: He-normal
    /// (std sqrt(2 / fan_in), Box-Muller over <see cref="Random"/>(seed)), biases 0. For test fixtures and benchmarks:
    /// random weights run exactly as fast as trained ones, and the same seed gives the same file.
    /// </summary>
    public static Dictionary<string, WeightTensor> RandomWeights(AlexNetSpec spec, int seed)
    {
        var rng = new Random(seed);
        var w = new Dictionary<string, WeightTensor>();
        void Layer(string name, params long[] shape)
        {
            var std = Math.Sqrt(2.0 / shape.Skip(1).Aggregate(1L, (a, b) => a * b));
            var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (var i = 0; i < data.Length; i++)
                data[i] = (float)(std * Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));
            w[$"{name}.weight"] = new WeightTensor(data, shape);
            w[$"{name}.bias"] = new WeightTensor(new float[shape[0]], [shape[0]]);
        }
        var s = spec;
        foreach (var t in new[] { "a", "b" })
        {
            Layer($"conv1{t}", s.Conv1, 3, s.Conv1Kernel, s.Conv1Kernel);
            Layer($"conv2{t}", s.Conv2, s.Conv1, 5, 5);
            Layer($"conv3{t}", s.Conv3, 2 * s.Conv2, 3, 3);
            Layer($"conv4{t}", s.Conv4, s.Conv3, 3, 3);
            Layer($"conv5{t}", s.Conv5, s.Conv4, 3, 3);
            Layer($"fc6{t}", s.Fc, s.Fc6Inputs);
            Layer($"fc7{t}", s.Fc, 2 * s.Fc);
        }
        Layer("fc8", s.Classes, 2 * s.Fc);
        return w;
    }

    public static OnnxModelBuilder Build(AlexNetSpec spec, IReadOnlyDictionary<string, WeightTensor> weights,
        Normalization norm, ModelMetadata metadata, LrnForm lrn = LrnForm.BandedConv)
    {
        var b = new OnnxModelBuilder { GraphName = $"alexnet_{spec.Preset}" };
        b.FloatInput(OnnxContract.Input, OnnxContract.BatchDim, 3, spec.InputSize, spec.InputSize);
        b.FloatOutput(OnnxContract.Probabilities, OnnxContract.BatchDim, spec.Classes);
        b.FloatOutput(OnnxContract.Features, OnnxContract.BatchDim, spec.FeatureDim);

        // (x - mean) / std, both (1, 3, 1, 1)
        b.Initializer("norm.mean", norm.Mean, 1, 3, 1, 1);
        b.Initializer("norm.std", norm.Std, 1, 3, 1, 1);
        b.Node("Sub", [OnnxContract.Input, "norm.mean"], ["x_centred"]);
        b.Node("Div", ["x_centred", "norm.std"], ["x"]);

        var c1 = spec.Conv1Kernel;
        Conv(b, weights, "conv1", "x", "conv1", group: 1, kernel: c1, stride: spec.Conv1Stride, pad: spec.Conv1Padding);
        Lrn(b, "conv1", 2 * spec.Conv1, lrn);
        MaxPool(b, "conv1_lrn", "pool1");
        Conv(b, weights, "conv2", "pool1", "conv2", group: 2, kernel: 5, stride: 1, pad: 2);
        Lrn(b, "conv2", 2 * spec.Conv2, lrn);
        MaxPool(b, "conv2_lrn", "pool2");
        Conv(b, weights, "conv3", "pool2", "conv3", group: 1, kernel: 3, stride: 1, pad: 1);
        Conv(b, weights, "conv4", "conv3_relu", "conv4", group: 2, kernel: 3, stride: 1, pad: 1);
        Conv(b, weights, "conv5", "conv4_relu", "conv5", group: 2, kernel: 3, stride: 1, pad: 1);
        MaxPool(b, "conv5_relu", "pool5");
        b.Node("Flatten", ["pool5"], ["flat"], ("axis", 1));                 // (N, 256, 6, 6) -> (N, 9216), tower a first
        Gemm(b, weights, "fc6", "flat", "fc6", towers: true);
        b.Node("Relu", ["fc6"], ["fc6_relu"]);
        Gemm(b, weights, "fc7", "fc6_relu", "fc7", towers: true);
        b.Node("Relu", ["fc7"], [OnnxContract.Features]);                    // (N, 4096): the paper's feature vector
        Gemm(b, weights, "fc8", OnnxContract.Features, "logits", towers: false);
        b.Node("Softmax", ["logits"], [OnnxContract.Probabilities], ("axis", 1));

        foreach (var (k, v) in metadata.ToProps(spec, norm)) b.Metadata(k, v);
        b.Metadata(OnnxContract.Keys.Lrn, lrn.ToString());
        return b;
    }

    /// <summary>Concatenates tower a's then tower b's weights along the output channels and adds Conv + Relu.</summary>
    static void Conv(OnnxModelBuilder b, IReadOnlyDictionary<string, WeightTensor> w, string layer, string input,
        string output, int group, int kernel, int stride, int pad)
    {
        var (weight, wShape) = ConcatTowers(w, layer, "weight");
        var (bias, _) = ConcatTowers(w, layer, "bias");
        if (wShape[2] != kernel || wShape[3] != kernel)
            throw new ArgumentException($"{layer}: kernel is {wShape[2]}x{wShape[3]}, the spec says {kernel}x{kernel}.");
        b.Initializer($"{layer}.weight", weight, wShape);
        b.Initializer($"{layer}.bias", bias, wShape[0]);
        b.Node("Conv", [input, $"{layer}.weight", $"{layer}.bias"], [output],
            ("group", group), ("kernel_shape", new long[] { kernel, kernel }), ("strides", new long[] { stride, stride }),
            ("pads", new long[] { pad, pad, pad, pad }));
        b.Node("Relu", [output], [$"{output}_relu"]);
    }

    static void Gemm(OnnxModelBuilder b, IReadOnlyDictionary<string, WeightTensor> w, string layer, string input, string output, bool towers)
    {
        var (weight, shape) = towers ? ConcatTowers(w, layer, "weight") : (w[$"{layer}.weight"].Data, w[$"{layer}.weight"].Shape);
        var bias = towers ? ConcatTowers(w, layer, "bias").Data : w[$"{layer}.bias"].Data;
        b.Initializer($"{layer}.weight", weight, shape);
        b.Initializer($"{layer}.bias", bias, shape[0]);
        b.Node("Gemm", [input, $"{layer}.weight", $"{layer}.bias"], [output], ("transB", 1));   // y = x W^T + b
    }

    static void Lrn(OnnxModelBuilder b, string layer, int channels, LrnForm form)
    {
        if (form == LrnForm.Operator) TowerLrn(b, layer);
        else BandedLrn(b, layer, channels);
    }

    /// <summary>
    /// The same function as per-tower LRN, in operators ONNX Runtime runs fast (its LRN kernel took about 40% of the
    /// forward time): s = W * a^2 + k with W a band of alpha/n (|i - j| &lt;= 2, same tower only) as a 1x1 convolution
    /// whose bias is k, grouped by tower (the band never crosses towers, so each group holds one tower's block: half
    /// the multiply-adds of the full C x C matrix); then a / s^0.75 with s^0.75 = sqrt(s) * sqrt(sqrt(s)).
    /// </summary>
    static void BandedLrn(OnnxModelBuilder b, string layer, int channels)
    {
        var tower = channels / 2;
        var band = new float[channels * tower];   // (C, C / 2, 1, 1): output o reads its own tower's channels
        for (var o = 0; o < channels; o++)
        {
            var first = o / tower * tower;
            for (var i = Math.Max(first, o - LrnSize / 2); i <= Math.Min(first + tower - 1, o + LrnSize / 2); i++)
                band[o * tower + (i - first)] = LrnAlpha / LrnSize;
        }
        var bias = Enumerable.Repeat(LrnBias, channels).ToArray();
        var x = $"{layer}_relu";
        b.Initializer($"{layer}.lrn_band", band, channels, tower, 1, 1);
        b.Initializer($"{layer}.lrn_k", bias, channels);
        b.Node("Mul", [x, x], [$"{layer}_sq"]);
        b.Node("Conv", [$"{layer}_sq", $"{layer}.lrn_band", $"{layer}.lrn_k"], [$"{layer}_s"], ("kernel_shape", new long[] { 1, 1 }),
            ("group", 2));
        b.Node("Sqrt", [$"{layer}_s"], [$"{layer}_s_half"]);
        b.Node("Sqrt", [$"{layer}_s_half"], [$"{layer}_s_quarter"]);
        b.Node("Mul", [$"{layer}_s_half", $"{layer}_s_quarter"], [$"{layer}_s_pow"]);      // s^0.75 (beta = 0.75)
        b.Node("Div", [x, $"{layer}_s_pow"], [$"{layer}_lrn"]);
    }

    static void TowerLrn(OnnxModelBuilder b, string layer)
    {
        b.Node("Split", [$"{layer}_relu"], [$"{layer}_a", $"{layer}_b"], ("axis", 1));          // equal halves: the towers
        foreach (var t in new[] { "a", "b" })
            b.Node("LRN", [$"{layer}_{t}"], [$"{layer}_{t}_lrn"],
                ("size", LrnSize), ("alpha", LrnAlpha), ("beta", LrnBeta), ("bias", LrnBias));
        b.Node("Concat", [$"{layer}_a_lrn", $"{layer}_b_lrn"], [$"{layer}_lrn"], ("axis", 1));
    }

    static void MaxPool(OnnxModelBuilder b, string input, string output) =>
        b.Node("MaxPool", [input], [output], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }));

    static (float[] Data, long[] Shape) ConcatTowers(IReadOnlyDictionary<string, WeightTensor> w, string layer, string kind)
    {
        var a = Get(w, $"{layer}a.{kind}");
        var bw = Get(w, $"{layer}b.{kind}");
        if (!a.Shape.Skip(1).SequenceEqual(bw.Shape.Skip(1)))
            throw new ArgumentException($"{layer}: tower shapes differ: [{string.Join(",", a.Shape)}] vs [{string.Join(",", bw.Shape)}].");
        var shape = (long[])a.Shape.Clone();
        shape[0] += bw.Shape[0];
        return ([.. a.Data, .. bw.Data], shape);
    }

    static WeightTensor Get(IReadOnlyDictionary<string, WeightTensor> w, string name) =>
        w.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"Weight '{name}' is missing; have: {string.Join(", ", w.Keys)}.");
}

/// <summary>What a model file says about itself, beside its weights.</summary>
public sealed record ModelMetadata(IReadOnlyList<string> Labels, IReadOnlyList<string>? Synsets, Provenance Provenance)
{
    public IEnumerable<(string Key, string Value)> ToProps(AlexNetSpec spec, Normalization norm)
    {
        if (Labels.Count != spec.Classes)
            throw new ArgumentException($"{Labels.Count} labels for {spec.Classes} classes.");
        yield return (OnnxContract.Keys.Labels, JsonSerializer.Serialize(Labels));
        if (Synsets is not null) yield return (OnnxContract.Keys.Synsets, JsonSerializer.Serialize(Synsets));
        yield return (OnnxContract.Keys.Preset, spec.Preset);
        yield return (OnnxContract.Keys.Spec, JsonSerializer.Serialize(spec));
        yield return (OnnxContract.Keys.InputSize, spec.InputSize.ToString());
        yield return (OnnxContract.Keys.ResizeSize, spec.ResizeSize.ToString());
        yield return (OnnxContract.Keys.PixelFormat, OnnxContract.PixelFormat);
        yield return (OnnxContract.Keys.Preprocessing, OnnxContract.Preprocessing);
        yield return (OnnxContract.Keys.Mean, JsonSerializer.Serialize(norm.Mean));
        yield return (OnnxContract.Keys.Std, JsonSerializer.Serialize(norm.Std));
        yield return (OnnxContract.Keys.Provenance, Provenance.ToJson());
    }
}
