using System.Text.Json;

namespace AlexNet.Model.Onnx;

/// <summary>
/// Writes torchvision's one-tower AlexNet (<see cref="TorchvisionAlexNetSpec"/>) as an ONNX graph with the same
/// contract as our own models (<see cref="OnnxContract"/>): input <c>image</c> (N, 3, 224, 224) RGB 0..255,
/// normalisation inside the graph, outputs <c>probabilities</c> (softmax) and <c>features</c> (fc7 after its ReLU,
/// the output of classifier.5). Weights come by torchvision's state-dict keys (<c>features.0.weight</c> ...
/// <c>classifier.6.bias</c>) and keep those names as initialisers.
/// </summary>
public static class TorchvisionOnnxGraph
{
    public static OnnxModelBuilder Build(TorchvisionAlexNetSpec spec, IReadOnlyDictionary<string, WeightTensor> weights, ModelMetadata metadata)
    {
        // At 224 the map after features is 55 -> 27 -> 13 -> 13 -> 13 -> 6, already 6x6, so torchvision's
        // AdaptiveAvgPool2d((6, 6)) averages single cells: the identity, and the graph leaves it out. Other sizes
        // would need a real pooling (ONNX has no adaptive one), so they are refused rather than written wrong.
        if (spec.InputSize != 224)
            throw new ArgumentException($"torchvision AlexNet is exported at 224x224 only (adaptive pooling is the identity there), not {spec.InputSize}.");
        foreach (var key in TorchvisionAlexNetSpec.Keys)
        {
            if (!weights.TryGetValue(key, out var w))
                throw new KeyNotFoundException($"Weight '{key}' is missing; have: {string.Join(", ", weights.Keys)}.");
            if (!w.Shape.SequenceEqual(spec.Shape(key)))
                throw new ArgumentException($"{key} is [{string.Join(", ", w.Shape)}], torchvision's AlexNet with {spec.Classes} classes needs [{string.Join(", ", spec.Shape(key))}].");
        }

        var b = new OnnxModelBuilder { GraphName = "alexnet_torchvision" };
        b.FloatInput(OnnxContract.Input, OnnxContract.BatchDim, 3, spec.InputSize, spec.InputSize);
        b.FloatOutput(OnnxContract.Probabilities, OnnxContract.BatchDim, spec.Classes);
        b.FloatOutput(OnnxContract.Features, OnnxContract.BatchDim, spec.FeatureDim);

        // (x - 255 mean) / (255 std), both (1, 3, 1, 1): torchvision's x / 255 then (x - mean) / std in one step.
        var norm = TorchvisionAlexNetSpec.Normalization;
        b.Initializer("norm.mean", norm.Mean, 1, 3, 1, 1);
        b.Initializer("norm.std", norm.Std, 1, 3, 1, 1);
        b.Node("Sub", [OnnxContract.Input, "norm.mean"], ["x_centred"]);
        b.Node("Div", ["x_centred", "norm.std"], ["x"]);

        Conv(b, weights, "features.0", "x", kernel: 11, stride: 4, pad: 2);                // (N, 64, 55, 55)
        MaxPool(b, "features.0_relu", "features.2");                                       // (N, 64, 27, 27)
        Conv(b, weights, "features.3", "features.2", kernel: 5, stride: 1, pad: 2);        // (N, 192, 27, 27)
        MaxPool(b, "features.3_relu", "features.5");                                       // (N, 192, 13, 13)
        Conv(b, weights, "features.6", "features.5", kernel: 3, stride: 1, pad: 1);        // (N, 384, 13, 13)
        Conv(b, weights, "features.8", "features.6_relu", kernel: 3, stride: 1, pad: 1);   // (N, 256, 13, 13)
        Conv(b, weights, "features.10", "features.8_relu", kernel: 3, stride: 1, pad: 1);  // (N, 256, 13, 13)
        MaxPool(b, "features.10_relu", "features.12");                                     // (N, 256, 6, 6)
        b.Node("Flatten", ["features.12"], ["flat"], ("axis", 1));                          // (N, 9216), channel-major as torch's flatten(1)
        // classifier.0 and .3 are dropout: the identity at inference.
        Gemm(b, weights, "classifier.1", "flat", "fc6");
        b.Node("Relu", ["fc6"], ["fc6_relu"]);
        Gemm(b, weights, "classifier.4", "fc6_relu", "fc7");
        b.Node("Relu", ["fc7"], [OnnxContract.Features]);                                    // (N, 4096): classifier.5's output
        Gemm(b, weights, "classifier.6", OnnxContract.Features, "logits");                 // (N, classes)
        b.Node("Softmax", ["logits"], [OnnxContract.Probabilities], ("axis", 1));

        foreach (var (k, v) in Props(spec, metadata)) b.Metadata(k, v);
        return b;
    }

    /// <summary>
    /// The metadata keys of <see cref="OnnxContract.Keys"/>, as <see cref="ModelMetadata.ToProps"/> writes them for our
    /// own nets. <c>alexnet.spec</c> holds this spec's JSON (Preset, Classes, InputSize, ResizeSize, ...), so a reader
    /// that only needs the sizes can still read it as an <see cref="AlexNetSpec"/>.
    /// </summary>
    public static IEnumerable<(string Key, string Value)> Props(TorchvisionAlexNetSpec spec, ModelMetadata metadata)
    {
        if (metadata.Labels.Count != spec.Classes)
            throw new ArgumentException($"{metadata.Labels.Count} labels for {spec.Classes} classes.");
        if (metadata.Synsets is { } s && s.Count != spec.Classes)
            throw new ArgumentException($"{s.Count} synsets for {spec.Classes} classes.");
        var norm = TorchvisionAlexNetSpec.Normalization;
        yield return (OnnxContract.Keys.Labels, JsonSerializer.Serialize(metadata.Labels));
        if (metadata.Synsets is not null) yield return (OnnxContract.Keys.Synsets, JsonSerializer.Serialize(metadata.Synsets));
        yield return (OnnxContract.Keys.Preset, spec.Preset);
        yield return (OnnxContract.Keys.Spec, JsonSerializer.Serialize(spec));
        yield return (OnnxContract.Keys.InputSize, spec.InputSize.ToString());
        yield return (OnnxContract.Keys.ResizeSize, spec.ResizeSize.ToString());
        yield return (OnnxContract.Keys.PixelFormat, OnnxContract.PixelFormat);
        yield return (OnnxContract.Keys.Preprocessing, TorchvisionAlexNetSpec.Preprocessing);
        yield return (OnnxContract.Keys.Mean, JsonSerializer.Serialize(norm.Mean));
        yield return (OnnxContract.Keys.Std, JsonSerializer.Serialize(norm.Std));
        yield return (OnnxContract.Keys.Provenance, metadata.Provenance.ToJson());
        yield return (OnnxContract.Keys.Lrn, "none");                      // torchvision's variant has no LRN
    }

    static void Conv(OnnxModelBuilder b, IReadOnlyDictionary<string, WeightTensor> w, string layer, string input, int kernel, int stride, int pad)
    {
        var (weight, bias) = (w[$"{layer}.weight"], w[$"{layer}.bias"]);
        b.Initializer($"{layer}.weight", weight.Data, weight.Shape);
        b.Initializer($"{layer}.bias", bias.Data, bias.Shape);
        b.Node("Conv", [input, $"{layer}.weight", $"{layer}.bias"], [layer],
            ("kernel_shape", new long[] { kernel, kernel }), ("strides", new long[] { stride, stride }),
            ("pads", new long[] { pad, pad, pad, pad }));
        b.Node("Relu", [layer], [$"{layer}_relu"]);
    }

    static void Gemm(OnnxModelBuilder b, IReadOnlyDictionary<string, WeightTensor> w, string layer, string input, string output)
    {
        var (weight, bias) = (w[$"{layer}.weight"], w[$"{layer}.bias"]);
        b.Initializer($"{layer}.weight", weight.Data, weight.Shape);
        b.Initializer($"{layer}.bias", bias.Data, bias.Shape);
        b.Node("Gemm", [input, $"{layer}.weight", $"{layer}.bias"], [output], ("transB", 1));   // y = x W^T + b
    }

    static void MaxPool(OnnxModelBuilder b, string input, string output) =>
        b.Node("MaxPool", [input], [output], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }));
}
