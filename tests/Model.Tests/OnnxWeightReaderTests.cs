using AlexNet.Model;
using AlexNet.Model.Onnx;

namespace AlexNet.Model.Tests;

/// <summary>The reader behind GET /api/model/conv1.png reads an operator's file as if it were hostile: every
/// truncation and every flipped byte of a real model gives the weights, an empty list or InvalidDataException, fast.</summary>
public sealed class OnnxWeightReaderTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("alexnet-reader-").FullName;

    string Model()
    {
        var spec = AlexNetSpec.Compact(3);
        var path = Path.Combine(_dir, "m.onnx");
        AlexNetOnnxGraph.Build(spec, AlexNetOnnxGraph.RandomWeights(spec, seed: 4), new Normalization([0f, 0f, 0f], [1f, 1f, 1f]),
            new ModelMetadata(["a", "b", "c"], null, new Provenance())).Save(path);
        return path;
    }

    [Fact]
    public void FindsBothTowersConv1AsTheFirstConvAndNothingDeeper()
    {
        var spec = AlexNetSpec.Compact(3);
        var w = AlexNetOnnxGraph.RandomWeights(spec, seed: 4);
        var conv1 = OnnxWeightReader.FirstConvWeights(Model()).Single();
        Assert.Equal(new long[] { 2 * spec.Conv1, 3, spec.Conv1Kernel, spec.Conv1Kernel }, conv1.Dims);
        Assert.Equal(w["conv1a.weight"].Data.Concat(w["conv1b.weight"].Data), conv1.Values);
    }

    [Fact]
    public void TruncatedOrCorruptedFilesGiveWeightsNothingOrInvalidData()
    {
        var bytes = File.ReadAllBytes(Model());
        var path = Path.Combine(_dir, "bad.onnx");
        var rng = new Random(9);
        var outcomes = new Dictionary<string, int>();
        for (var trial = 0; trial < 300; trial++)
        {
            var bad = trial < 150 ? bytes[..rng.Next(bytes.Length)] : (byte[])bytes.Clone();
            if (trial >= 150)
                for (var f = 0; f < 4; f++) bad[rng.Next(Math.Min(bad.Length, 4096 + trial * 40))] = (byte)rng.Next(256);   // headers and graph
            File.WriteAllBytes(path, bad);
            string outcome;
            try
            {
                outcome = OnnxWeightReader.FirstConvWeights(path).Count > 0 ? "weights" : "none";
            }
            catch (InvalidDataException)
            {
                outcome = "invalid";
            }
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }
        Assert.True(outcomes.GetValueOrDefault("invalid") > 0, string.Join(", ", outcomes));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
