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

        // (x - 255 mean) / (255 std): torchvision's x / 255 then (x - mean) / std in one step.
        var norm = TorchvisionAlexNetSpec.Normalization;
        var b = OnnxGraphParts.Begin("alexnet_torchvision", spec.InputSize, spec.Classes, spec.FeatureDim, norm);
        void Conv(string layer, string input, int kernel, int stride, int pad) =>
            OnnxGraphParts.ConvRelu(b, layer, input, weights[$"{layer}.weight"], weights[$"{layer}.bias"], group: 1, kernel, stride, pad);
        OnnxGraphParts.Layer Linear(string layer) => new(layer, weights[$"{layer}.weight"], weights[$"{layer}.bias"]);

        Conv("features.0", "x", kernel: 11, stride: 4, pad: 2);                        // (N, 64, 55, 55)
        OnnxGraphParts.MaxPool(b, "features.0_relu", "features.2");                     // (N, 64, 27, 27)
        Conv("features.3", "features.2", kernel: 5, stride: 1, pad: 2);                 // (N, 192, 27, 27)
        OnnxGraphParts.MaxPool(b, "features.3_relu", "features.5");                     // (N, 192, 13, 13)
        Conv("features.6", "features.5", kernel: 3, stride: 1, pad: 1);                 // (N, 384, 13, 13)
        Conv("features.8", "features.6_relu", kernel: 3, stride: 1, pad: 1);            // (N, 256, 13, 13)
        Conv("features.10", "features.8_relu", kernel: 3, stride: 1, pad: 1);           // (N, 256, 13, 13)
        OnnxGraphParts.MaxPool(b, "features.10_relu", "features.12");                   // (N, 256, 6, 6)
        // classifier.0 and .3 are dropout; classifier.5's output (fc7 after its ReLU) is the features output.
        OnnxGraphParts.Classifier(b, "features.12", Linear("classifier.1"), Linear("classifier.4"), Linear("classifier.6"));

        metadata.WriteTo(b, spec.Preset, JsonSerializer.Serialize(spec), spec.Classes, spec.InputSize, spec.ResizeSize,
            TorchvisionAlexNetSpec.Preprocessing, norm, lrn: "none");        // torchvision's variant has no LRN
        return b;
    }
}
