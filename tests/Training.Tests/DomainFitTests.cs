using AlexNet.Model.OutOfDomain;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace AlexNet.Training.Tests;

/// <summary>fit-ood on a generated model and generated Fashion-MNIST-like files: the statistics go into the file, and
/// nothing else in it changes.</summary>
public sealed class DomainFitTests
{
    static string Model(string path, int seed) => Fixtures.CompactModel(path, seed);

    /// <summary>Gzipped IDX files of 28x28 grey images: a light rectangle of random size and brightness, with noise, on black.</summary>
    static string Data(string dir, int count, int seed)
    {
        Directory.CreateDirectory(dir);
        var rng = new Random(seed);
        var pixels = new byte[count * 784];
        for (var i = 0; i < count; i++)
        {
            var (w, h, v) = (rng.Next(8, 24), rng.Next(8, 26), rng.Next(90, 250));
            var (x0, y0) = ((28 - w) / 2, (28 - h) / 2);
            for (var y = y0; y < y0 + h; y++)
                for (var x = x0; x < x0 + w; x++) pixels[i * 784 + y * 28 + x] = (byte)Math.Clamp(v + rng.Next(-30, 30), 0, 255);
        }
        IdxFile.Write(Path.Combine(dir, "train-images-idx3-ubyte.gz"), 2051, [count, 28, 28], pixels);
        IdxFile.Write(Path.Combine(dir, "train-labels-idx1-ubyte.gz"), 2049, [count], [.. Enumerable.Range(0, count).Select(i => (byte)(i % 10))]);
        return dir;
    }

    static (float[] Probabilities, float[] Features) Answers(string model, float[] images, int n)
    {
        using var session = new InferenceSession(model);
        var input = new DenseTensor<float>(images, [n, 3, 56, 56]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxContract.Input, input)], [OnnxContract.Probabilities, OnnxContract.Features]);
        return (results[0].AsTensor<float>().ToArray(), results[1].AsTensor<float>().ToArray());
    }

    static string[] FitOod(string model, string data, string output) =>
        ["fit-ood", "--model", model, "--out", output, "--fashion-mnist", data, "--val-holdout", "40", "--seed", "42"];

    [Fact]
    public void FitOodAddsTheStatisticsAndLeavesEveryAnswerBitForBit()
    {
        using var dir = new TempDir();
        var original = Model(dir.File("model.onnx"), seed: 4);
        var data = Data(dir.File("fashion"), count: 200, seed: 5);

        var (code, stdout, stderr) = CliTests.Run(FitOod(original, data, dir.File("fitted.onnx")));
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(dir.File("fitted.onnx"), stdout.Trim().Split('\n')[^1].Trim());

        // Same probabilities and features, bit for bit, on inputs the fit never saw.
        var rng = new Random(6);
        var images = new float[4 * 3 * 56 * 56];
        for (var i = 0; i < images.Length; i++) images[i] = rng.Next(256);
        var (p0, f0) = Answers(original, images, 4);
        var (p1, f1) = Answers(dir.File("fitted.onnx"), images, 4);
        Assert.Equal(p0, p1);
        Assert.Equal(f0, f1);

        using var session = new InferenceSession(dir.File("fitted.onnx"));
        using var before = new InferenceSession(original);
        var meta = session.ModelMetadata.CustomMetadataMap;
        var stats = DomainStatistics.FromJson(meta[DomainStatistics.MetadataKey]);
        Assert.Equal(stats.Dim, session.OutputMetadata[DomainStatisticsGraph.Output].Dimensions[1]);
        Assert.Equal((24, 16), (stats.FitImages, stats.CalibrationImages));   // 40 held out: 60% fit, 40% calibrate
        Assert.Equal([OnnxContract.Probabilities, OnnxContract.Features, DomainStatisticsGraph.Output], session.OutputMetadata.Keys);
        foreach (var (key, value) in before.ModelMetadata.CustomMetadataMap) Assert.Equal(value, meta[key]);
    }

    [Fact]
    public void FittingIsDeterministicAndFittingAgainReplacesRatherThanAdds()
    {
        using var dir = new TempDir();
        var original = Model(dir.File("model.onnx"), seed: 7);
        var data = Data(dir.File("fashion"), count: 200, seed: 8);

        foreach (var (from, to) in new[] { (original, "a.onnx"), (original, "b.onnx"), (dir.File("a.onnx"), "c.onnx") })
        {
            var (code, stdout, stderr) = CliTests.Run(FitOod(from, data, dir.File(to)));
            Assert.True(code == 0, stderr + stdout);
        }

        Assert.Equal(File.ReadAllBytes(dir.File("a.onnx")), File.ReadAllBytes(dir.File("b.onnx")));
        // Fitting a fitted file again gives the same file: the old statistics and nodes are replaced, not kept beside the new.
        Assert.Equal(File.ReadAllBytes(dir.File("a.onnx")), File.ReadAllBytes(dir.File("c.onnx")));
        using var session = new InferenceSession(dir.File("c.onnx"));
        Assert.Equal(3, session.OutputMetadata.Count);
    }

    [Fact]
    public void FitOodRefusesToReplaceAnotherFileWithoutForce()
    {
        using var dir = new TempDir();
        var model = Model(dir.File("model.onnx"), seed: 9);
        File.WriteAllText(dir.File("taken.onnx"), "mine");

        var (code, stdout, stderr) = CliTests.Run(FitOod(model, Data(dir.File("fashion"), 50, 1), dir.File("taken.onnx")));

        Assert.NotEqual(0, code);
        Assert.Contains("--force", stderr + stdout);
        Assert.Equal("mine", File.ReadAllText(dir.File("taken.onnx")));
    }
}
