using System.Text.Json;

namespace AlexNet.Model.Onnx;

/// <summary>How LRN is written: ONNX's LRN operator per tower, or the equivalent banded 1x1 convolution (faster).</summary>
public enum LrnForm { BandedConv, Operator }

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
        var b = OnnxGraphParts.Begin($"alexnet_{spec.Preset}", spec.InputSize, spec.Classes, spec.FeatureDim, norm);
        void Conv(string layer, string input, int group, int kernel, int stride, int pad) =>
            OnnxGraphParts.ConvRelu(b, layer, input, Towers(weights, layer, "weight"), Towers(weights, layer, "bias"), group, kernel, stride, pad);

        Conv("conv1", "x", group: 1, kernel: spec.Conv1Kernel, stride: spec.Conv1Stride, pad: spec.Conv1Padding);
        Lrn(b, "conv1", 2 * spec.Conv1, lrn);
        OnnxGraphParts.MaxPool(b, "conv1_lrn", "pool1");
        Conv("conv2", "pool1", group: 2, kernel: 5, stride: 1, pad: 2);
        Lrn(b, "conv2", 2 * spec.Conv2, lrn);
        OnnxGraphParts.MaxPool(b, "conv2_lrn", "pool2");
        Conv("conv3", "pool2", group: 1, kernel: 3, stride: 1, pad: 1);
        Conv("conv4", "conv3_relu", group: 2, kernel: 3, stride: 1, pad: 1);
        Conv("conv5", "conv4_relu", group: 2, kernel: 3, stride: 1, pad: 1);
        OnnxGraphParts.MaxPool(b, "conv5_relu", "pool5");                     // (N, 256, 6, 6), tower a's maps first
        OnnxGraphParts.Classifier(b, "pool5",
            new("fc6", Towers(weights, "fc6", "weight"), Towers(weights, "fc6", "bias")),
            new("fc7", Towers(weights, "fc7", "weight"), Towers(weights, "fc7", "bias")),
            new("fc8", Get(weights, "fc8.weight"), Get(weights, "fc8.bias")));

        metadata.WriteTo(b, spec.Preset, JsonSerializer.Serialize(spec), spec.Classes, spec.InputSize, spec.ResizeSize,
            OnnxContract.Preprocessing, norm, lrn.ToString());
        return b;
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

    /// <summary>Tower a's then tower b's tensor, concatenated along the output channels (dimension 0).</summary>
    static WeightTensor Towers(IReadOnlyDictionary<string, WeightTensor> w, string layer, string kind)
    {
        var a = Get(w, $"{layer}a.{kind}");
        var bw = Get(w, $"{layer}b.{kind}");
        if (!a.Shape.Skip(1).SequenceEqual(bw.Shape.Skip(1)))
            throw new ArgumentException($"{layer}: tower shapes differ: [{string.Join(",", a.Shape)}] vs [{string.Join(",", bw.Shape)}].");
        var shape = (long[])a.Shape.Clone();
        shape[0] += bw.Shape[0];
        return new([.. a.Data, .. bw.Data], shape);
    }

    static WeightTensor Get(IReadOnlyDictionary<string, WeightTensor> w, string name) =>
        w.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"Weight '{name}' is missing; have: {string.Join(", ", w.Keys)}.");
}
