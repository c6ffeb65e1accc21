namespace AlexNet.Model;

/// <summary>
/// The shape of a two-tower AlexNet (paper section 3.5). Channel counts are per tower; the whole net has twice as
/// many. conv1 sees the image; conv2, conv4 and conv5 see only their own tower; conv3, fc6, fc7 and fc8 see both.
/// </summary>
/// <param name="Preset">Name written into checkpoints and exported models.</param>
/// <param name="InputSize">Side of the square crop the network sees (224 in the paper).</param>
/// <param name="ResizeSize">Shorter side is rescaled to this, then the central square is kept (256 in the paper).</param>
public sealed record AlexNetSpec(
    string Preset,
    int Classes,
    int InputSize,
    int ResizeSize,
    int Conv1Kernel,
    int Conv1Stride,
    int Conv1Padding,
    int Conv1, int Conv2, int Conv3, int Conv4, int Conv5,
    int Fc)
{
    /// <summary>The paper's network: 60,965,224 parameters with 1000 classes. conv1 pads by 2 so 224 gives 55x55
    /// (torchvision's choice; Caffe crops 227 instead).</summary>
    public static AlexNetSpec Paper(int classes = 1000) =>
        new("paper", classes, 224, 256, 11, 4, 2, 48, 128, 192, 192, 128, 2048);

    /// <summary>Same topology at a quarter of the resolution and half of the kernels, so that it trains on two CPU
    /// cores in about an hour (2.16 M parameters with 10 classes). 56 -> conv1 (5x5 s2) 28 -> pool 13 -> conv2, pool 6
    /// -> conv3..5 at 6 -> pool 2; 64/56 keeps the paper's 256/224.</summary>
    public static AlexNetSpec Compact(int classes = 10) =>
        new("compact", classes, 56, 64, 5, 2, 2, 24, 64, 96, 96, 64, 512);

    public static AlexNetSpec FromPreset(string preset, int classes) => preset switch
    {
        "paper" => Paper(classes),
        "compact" => Compact(classes),
        _ => throw new ArgumentException($"Unknown preset '{preset}'. Known presets: paper, compact.", nameof(preset)),
    };

    public static IReadOnlyList<string> PresetNames { get; } = ["paper", "compact"];

    /// <summary>Width of the FC7 feature vector: both towers' fc7 (4096 in the paper).</summary>
    public int FeatureDim => 2 * Fc;

    /// <summary>Spatial side after conv1 and after each pooling: 55-27-13-6 for the paper.</summary>
    public int Conv1Out => (InputSize + 2 * Conv1Padding - Conv1Kernel) / Conv1Stride + 1;
    public int Pool1Out => PoolOut(Conv1Out);
    public int Pool2Out => PoolOut(Pool1Out);
    public int Pool5Out => PoolOut(Pool2Out);
    /// <summary>Inputs of fc6: both towers' pool5 maps flattened (9216 = 256 x 6 x 6 in the paper).</summary>
    public int Fc6Inputs => 2 * Conv5 * Pool5Out * Pool5Out;

    static int PoolOut(int side) => (side - 3) / 2 + 1;   // overlapping max-pooling, 3x3 stride 2, no padding
}
