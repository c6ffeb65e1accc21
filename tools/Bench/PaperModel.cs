using AlexNet.Model;
using AlexNet.Model.Onnx;

namespace AlexNet.Bench;

/// <summary>
/// A paper-preset AlexNet ONNX file with seeded He-normal weights (std sqrt(2 / fan_in), biases 0), written with the
/// exporter's graph writer, as tests/Api.Tests' ModelFixture does for the compact preset. Random weights run exactly
/// as fast as trained ones; the labels are c0..c999.
/// </summary>
public static class PaperModel
{
    public static void Write(string path, AlexNetSpec spec, int seed, LrnForm lrn)
    {
        var rng = new Random(seed);
        var w = new Dictionary<string, WeightTensor>();
        void Layer(string name, params long[] shape)
        {
            var fanIn = shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            var std = Math.Sqrt(2.0 / fanIn);
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
        var norm = new Normalization([123.675f, 116.28f, 103.53f], [58.395f, 57.12f, 57.375f]);
        var labels = Enumerable.Range(0, s.Classes).Select(i => $"c{i}").ToArray();
        var provenance = new Provenance { Dataset = "none", Epochs = 0, Init = $"He normal, seed {seed}", Command = "alexnet-bench model" };
        AlexNetOnnxGraph.Build(s, w, norm, new ModelMetadata(labels, null, provenance), lrn).Save(path);
    }
}
