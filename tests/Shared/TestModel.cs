using AlexNet.Model;
using AlexNet.Model.Onnx;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Tests.Shared;

/// <summary>
/// A real compact-preset model (10 Fashion-MNIST class names) written with <see cref="AlexNetOnnxGraph"/> from seeded
/// He-normal weights (std sqrt(2 / fan_in), biases 0): confident, untrained outputs, so sorting, averaging and mixing
/// errors show. Its provenance claims validation metrics, so the page has some to show.
/// </summary>
public static class TestModel
{
    public static readonly string[] Labels = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
    /// <summary>WordNet ids for some classes; "" where unknown.</summary>
    public static readonly string[] Synsets = ["n04370456", "", "n03980874", "n03236735", "", "n04133789", "", "n04199027", "", ""];
    public static readonly AlexNetSpec Spec = AlexNetSpec.Compact(10);

    public static void Write(string path, int seed)
    {
        var s = Spec;
        var w = AlexNetOnnxGraph.RandomWeights(s, seed);
        var norm = new Normalization([128f, 128f, 128f], [64f, 64f, 64f]);   // inputs of about unit scale
        var provenance = new Provenance
        {
            Dataset = "test", Epochs = 3, Init = $"He normal, seed {seed}", Command = "TestModel.Write",
            Metrics = new() { ["val_top1_error"] = 0.9, ["val_top5_error"] = 0.5 },
        };
        AlexNetOnnxGraph.Build(s, w, norm, new AlexNet.Model.Onnx.ModelMetadata(Labels, Synsets, provenance)).Save(path);
    }

    /// <summary>A stand-in for the training worker's conv1 picture beside a model: two rows (towers) of 24 5x5 colour
    /// kernels, each pixel 4x4 with a 4-pixel gap.</summary>
    public static void WriteConv1Picture(string path, int seed)
    {
        const int kernels = 24, size = 5, scale = 4, gap = 4;
        var rng = new Random(seed);
        using var image = new Image<Rgb24>(kernels * (size * scale + gap) - gap, 2 * size * scale + gap, new Rgb24(255, 255, 255));
        for (var tower = 0; tower < 2; tower++)
            for (var k = 0; k < kernels; k++)
                for (var y = 0; y < size; y++)
                    for (var x = 0; x < size; x++)
                    {
                        var c = new Rgb24((byte)rng.Next(40, 220), (byte)rng.Next(40, 220), (byte)rng.Next(40, 220));
                        for (var dy = 0; dy < scale; dy++)
                            for (var dx = 0; dx < scale; dx++)
                                image[k * (size * scale + gap) + x * scale + dx, tower * (size * scale + gap) + y * scale + dy] = c;
                    }
        image.SaveAsPng(path);
    }
}
