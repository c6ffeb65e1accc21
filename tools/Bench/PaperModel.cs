using AlexNet.Model;
using AlexNet.Model.Onnx;

namespace AlexNet.Bench;

/// <summary>
/// A paper-preset AlexNet ONNX file with seeded He-normal weights (std sqrt(2 / fan_in), biases 0), written with the
/// exporter's graph writer (AlexNetOnnxGraph.RandomWeights, as the test fixtures use for the compact preset). Random weights run exactly
/// as fast as trained ones; the labels are c0..c999.
/// </summary>
public static class PaperModel
{
    public static void Write(string path, AlexNetSpec spec, int seed, LrnForm lrn)
    {
        var s = spec;
        var w = AlexNetOnnxGraph.RandomWeights(s, seed);
        var norm = new Normalization([123.675f, 116.28f, 103.53f], [58.395f, 57.12f, 57.375f]);
        var labels = Enumerable.Range(0, s.Classes).Select(i => $"c{i}").ToArray();
        var provenance = new Provenance { Dataset = "none", Epochs = 0, Init = $"He normal, seed {seed}", Command = "alexnet-bench model" };
        AlexNetOnnxGraph.Build(s, w, norm, new ModelMetadata(labels, null, provenance), lrn).Save(path);
    }
}
