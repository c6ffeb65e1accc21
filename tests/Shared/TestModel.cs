using AlexNet.Model;
using AlexNet.Model.Onnx;

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
}
