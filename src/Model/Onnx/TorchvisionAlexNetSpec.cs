namespace AlexNet.Model.Onnx;

/// <summary>
/// torchvision's AlexNet (<c>torchvision.models.alexnet</c>; pytorch/vision <c>torchvision/models/alexnet.py</c>): one
/// tower of 64/192/384/256/256 kernels, no LRN, no groups, adaptive average pooling to 6x6, dropout before fc6 and
/// fc7. 61,100,840 parameters with 1000 classes. Not the paper's two-tower net (<see cref="AlexNetSpec"/>): "AlexNet"
/// names three different networks, this is the one whose published weights most people have.
/// Input: RGB (N, 3, 224, 224). torchvision normalises x / 255 with <see cref="MeanUnit"/> and <see cref="StdUnit"/>;
/// our graph takes 0..255 pixels and divides by std * 255 after subtracting mean * 255 (<see cref="Normalization"/>).
/// </summary>
/// <param name="Classes">Rows of <c>classifier.6.weight</c> (1000 for ImageNet weights).</param>
/// <param name="InputSize">Side of the crop: 224 (torchvision's CenterCrop(224)).</param>
/// <param name="ResizeSize">Shorter side before the crop: 256 (torchvision's Resize(256)).</param>
public sealed record TorchvisionAlexNetSpec(int Classes, int InputSize = 224, int ResizeSize = 256)
{
    /// <summary>The name written into exports (<c>alexnet.preset</c>) and checkpoints.</summary>
    public const string PresetName = "torchvision";
    public string Preset => PresetName;

    /// <summary>Output channels of features.0, .3, .6, .8 and .10.</summary>
    public static IReadOnlyList<int> Channels { get; } = [64, 192, 384, 256, 256];

    /// <summary>Width of fc6 and fc7 (classifier.1 and classifier.4); fc7 after its ReLU is the feature vector.</summary>
    public int FeatureDim => 4096;

    /// <summary>Side of the pooled map that classifier.1 flattens: AdaptiveAvgPool2d((6, 6)).</summary>
    public const int PoolSize = 6;

    /// <summary>Inputs of classifier.1: 256 x 6 x 6.</summary>
    public int Fc6Inputs => Channels[^1] * PoolSize * PoolSize;

    /// <summary>Every weight and bias: 61,100,840 with 1000 classes.</summary>
    public long Parameters
    {
        get
        {
            long conv = 0, inC = 3;
            int[] kernels = [11, 5, 3, 3, 3];
            for (var i = 0; i < Channels.Count; i++) { conv += Channels[i] * (inC * kernels[i] * kernels[i] + 1); inC = Channels[i]; }
            return conv + (Fc6Inputs + 1L) * FeatureDim + (FeatureDim + 1L) * FeatureDim + (FeatureDim + 1L) * Classes;
        }
    }

    /// <summary>torchvision's ImageNet statistics for RGB in 0..1 (transforms.Normalize).</summary>
    public static IReadOnlyList<double> MeanUnit { get; } = [0.485, 0.456, 0.406];
    public static IReadOnlyList<double> StdUnit { get; } = [0.229, 0.224, 0.225];

    /// <summary>The same statistics in pixel units: (x / 255 - m) / s = (x - 255 m) / (255 s). Mean 123.675,
    /// 116.28, 103.53; std 58.395, 57.12, 57.375.</summary>
    public static Normalization Normalization { get; } = new(
        [.. MeanUnit.Select(m => (float)(m * 255))], [.. StdUnit.Select(s => (float)(s * 255))]);

    /// <summary>torchvision's state-dict keys, in its order: the convolutions of <c>features</c>, then the linear
    /// layers of <c>classifier</c> (classifier.6 is the last layer, fc8).</summary>
    public static IReadOnlyList<string> Keys { get; } =
    [
        .. new[] { "features.0", "features.3", "features.6", "features.8", "features.10", "classifier.1", "classifier.4", "classifier.6" }
            .SelectMany(layer => new[] { $"{layer}.weight", $"{layer}.bias" }),
    ];

    /// <summary>The shape each key must have.</summary>
    public long[] Shape(string key) => key switch
    {
        "features.0.weight" => [64, 3, 11, 11],
        "features.3.weight" => [192, 64, 5, 5],
        "features.6.weight" => [384, 192, 3, 3],
        "features.8.weight" => [256, 384, 3, 3],
        "features.10.weight" => [256, 256, 3, 3],
        "classifier.1.weight" => [FeatureDim, Fc6Inputs],
        "classifier.4.weight" => [FeatureDim, FeatureDim],
        "classifier.6.weight" => [Classes, FeatureDim],
        "features.0.bias" => [64],
        "features.3.bias" => [192],
        "features.6.bias" => [384],
        "features.8.bias" or "features.10.bias" => [256],
        "classifier.1.bias" or "classifier.4.bias" => [FeatureDim],
        "classifier.6.bias" => [Classes],
        _ => throw new KeyNotFoundException($"'{key}' is not a key of torchvision's AlexNet; the keys are {string.Join(", ", Keys)}."),
    };

    /// <summary>What <c>alexnet.preprocessing</c> says for these models.</summary>
    public const string Preprocessing =
        "torchvision's eval transform: shorter side to resize_size (256, bilinear), central input_size crop (224); " +
        "the graph takes RGB 0..255 and applies x / 255, then (x - mean) / std with ImageNet's 0.485/0.456/0.406 and " +
        "0.229/0.224/0.225 (stored in alexnet.mean and alexnet.std in pixel units)";
}
