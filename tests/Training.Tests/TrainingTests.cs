using static TorchSharp.torch;

namespace AlexNet.Training.Tests;

/// <summary>Collects what the trainer reports.</summary>
sealed class ListReport : ITrainingReport
{
    public List<string> Lines { get; } = [];
    public List<EpochMetrics> Epochs { get; } = [];
    public void Info(string line) => Lines.Add(line);
    public void Warn(string line) => Lines.Add("WARN " + line);
    public void Batch(int epoch, int batch, int batches, double loss, double top1Error, double imagesPerSecond) { }
    public void Epoch(EpochMetrics metrics) => Epochs.Add(metrics);
}

public class TrainingTests
{
    public TrainingTests() => TorchSetup.Ensure();

    static TrainOptions Tiny(string data, string output, int epochs) => new()
    {
        Preset = "compact", Data = data, Output = output, Epochs = epochs, BatchSize = 8, LearningRate = 0.01,
        Init = InitScheme.Kaiming, Normalize = NormalizeMode.MeanStd, Seed = 5, EvalBatchSize = 16,
    };

    [Theory]
    // The paper's own init (biases 1 in fc6/fc7) starts near 7.7 for 1000 classes, not ln(1000) = 6.91: its
    // all-positive fc7 features give fc8 logits a spread of about 1. Caffe's biases of 0.1 start where they should.
    [InlineData("paper", 1000, InitScheme.Caffe)]
    [InlineData("compact", 10, InitScheme.Caffe)]
    public void LossAtStartIsAboutLnOfTheClassCount(string preset, int classes, InitScheme init)
    {
        random.manual_seed(1);
        var spec = AlexNetSpec.FromPreset(preset, classes);
        // Standardised inputs, as after --normalize meanstd (uniform 0..255 noise has mean 127.5 and std 73.6).
        using var model = new AlexNetModule(spec, new Normalization([127.5f, 127.5f, 127.5f], [73.6f, 73.6f, 73.6f]));
        model.Initialize(init);
        model.train();
        using var _ = no_grad();
        var x = rand(8, 3, spec.InputSize, spec.InputSize) * 255;
        var y = randint(0, classes, [8]);
        var loss = nn.functional.cross_entropy(model.call(x), y).item<float>();
        Assert.InRange(loss, Math.Log(classes) * 0.98, Math.Log(classes) * 1.02);
    }

    [Fact]
    public void LossFallsWhenOneBatchIsRepeated()
    {
        random.manual_seed(2);
        using var model = new AlexNetModule(AlexNetSpec.Compact(4), new Normalization([128f, 128f, 128f], [64f, 64f, 64f]));
        model.Initialize(InitScheme.Kaiming);
        model.train();
        var optimizer = optim.SGD(model.parameters(), 0.01, momentum: 0.9, weight_decay: 5e-4);
        var x = rand(16, 3, 56, 56) * 255;
        var y = randint(0, 4, [16]);
        float first = 0, last = 0;
        for (var step = 0; step < 30; step++)
        {
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(x), y);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        Assert.True(last < 0.5 * first, $"loss went from {first} to {last}");
    }

    static Dictionary<string, Tensor> Weights(string checkpoint)
    {
        var (_, model) = Checkpoint.Load(checkpoint);
        return model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
    }

    static void AssertSameWeights(Dictionary<string, Tensor> a, Dictionary<string, Tensor> b)
    {
        Assert.Equal(a.Keys.Order(), b.Keys.Order());
        foreach (var (k, v) in a)
            Assert.True(v.allclose(b[k], rtol: 1e-5, atol: 1e-7), $"{k} differs");
    }

    [Fact]
    public void CheckpointThenResumeGivesTheSameWeightsAsAnUninterruptedRun()
    {
        using var dir = new TempDir();
        var data = Fixtures.ImageFolder(dir.File("data"), ["a", "b"], trainPerClass: 10, valPerClass: 3);
        var report = new ListReport();
        var straight = new Trainer(report).Train(Tiny(data, dir.File("straight"), epochs: 3));
        new Trainer(report).Train(Tiny(data, dir.File("split"), epochs: 1));
        var resumed = new Trainer(report).Resume(dir.File("split"), epochs: 3);

        Assert.Equal(3, straight.Epoch);
        Assert.Equal(3, resumed.Epoch);
        Assert.Equal(straight.History.Select(h => h.TrainLoss), resumed.History.Select(h => h.TrainLoss));
        AssertSameWeights(Weights(dir.File("straight/last.ckpt")), Weights(dir.File("split/last.ckpt")));
        Assert.Contains(report.Lines, l => l.Contains("skipped") && l.Contains("broken.jpg"));
    }

    /// <summary>One epoch of the tiny recipe on two small classes, in <paramref name="dir"/>/run.</summary>
    static TrainState OneEpoch(TempDir dir, ITrainingReport report, int? limit = null) =>
        new Trainer(report).Train(Tiny(Fixtures.ImageFolder(dir.File("data"), ["a", "b"], trainPerClass: 6, valPerClass: 2),
            dir.File("run"), epochs: 1) with { Limit = limit });

    [Fact]
    public void AnExportOfALimitedRunRecordsTheLimitInItsProvenance()
    {
        using var dir = new TempDir();
        OneEpoch(dir, new ListReport(), limit: 4);
        var onnx = dir.File("run.onnx");
        AlexNet.Training.Export.ModelExport.FromCheckpoint(dir.File("run/best.ckpt"), onnx, new ListReport());
        using var session = new InferenceSession(onnx);
        Assert.Equal(4, Provenance.FromJson(session.ModelMetadata.CustomMetadataMap[OnnxContract.Keys.Provenance]).Limit);
    }

    [Fact]
    public void ResumingAFinishedRunSaysItIsFinishedAndTrainsNothing()
    {
        using var dir = new TempDir();
        var report = new ListReport();
        var done = OneEpoch(dir, report);
        var before = File.GetLastWriteTimeUtc(dir.File("run/last.ckpt"));
        var again = new Trainer(report).Resume(dir.File("run"));
        Assert.Equal(done.Epoch, again.Epoch);
        Assert.Equal(before, File.GetLastWriteTimeUtc(dir.File("run/last.ckpt")));   // no epoch ran, nothing was saved
        Assert.Contains(report.Lines, l => l.Contains("is finished") && l.Contains("--epochs 2"));
    }

    [Fact]
    public void PlateauScheduleDividesTheLearningRateAtMostThreeTimes()
    {
        var o = new TrainOptions { Patience = 1, MaxLrDrops = 3 };
        var s = new TrainState { LearningRate = 0.01 };
        double[] errors = [0.5, 0.4, 0.45, 0.41, 0.42, 0.43, 0.44, 0.45, 0.46];
        var lrs = new List<double>();
        for (var e = 0; e < errors.Length; e++) { s = LrSchedule.AfterEpoch(o, s, e, errors[e]); lrs.Add(s.LearningRate); }
        Assert.Equal([0.01, 0.01, 0.001, 0.0001, 0.00001, 0.00001, 0.00001, 0.00001, 0.00001], lrs.Select(l => Math.Round(l, 8)));
        Assert.Equal(3, s.LrDrops);
        Assert.Equal(1, s.BestEpoch);
    }

    /// <summary>A known model: class probabilities are a fixed function of the crop's first red pixel.</summary>
    sealed class RedPixelScorer(int classes, int cropLength) : IScorer
    {
        public int Classes => classes;
        public float[] Probabilities(float[] images, int count)
        {
            var p = new float[count * classes];
            for (var i = 0; i < count; i++)
            {
                var red = (int)images[i * cropLength];
                // favourite class = red % classes with 0.5; the next three get 0.2, 0.15, 0.1; the rest share 0.05
                var row = p.AsSpan(i * classes, classes);
                row.Fill(0.05f / (classes - 4));
                float[] top = [0.5f, 0.2f, 0.15f, 0.1f];
                for (var j = 0; j < 4; j++) row[(red + j) % classes] = top[j];
            }
            return p;
        }
    }

    [Fact]
    public void EvaluationMatchesAHandComputedTopK()
    {
        var prep = new ImagePreprocessor(64, 56);
        const int classes = 8;
        int[] reds = [0, 1, 2, 3, 4, 5];
        // Image i scores (red + j) % 8 at 0.5, 0.2, 0.15, 0.1 (j = 0..3) and 0.0125 for the other four classes;
        // the fifth-best is the lowest-index filler. Labels rank 1st, 2nd, out, 4th, 2nd, out of the top 5.
        int[] labels = [0, 2, 7, 6, 5, 3];
        var pixels = new byte[reds.Length * 64 * 64 * 3];
        for (var i = 0; i < reds.Length; i++)
            for (var p = 0; p < 64 * 64; p++) pixels[(i * 64 * 64 + p) * 3] = (byte)reds[i];
        var set = new ImageSet(pixels, labels, 64, new LabelSet(Enumerable.Range(0, classes).Select(c => $"c{c}").ToArray()), "test");
        var result = Evaluator.Evaluate(new RedPixelScorer(classes, prep.CropLength), set, prep, tenCrop: false);
        Assert.Equal(6, result.Images);
        Assert.Equal(5.0 / 6, result.Top1Error, 9);
        Assert.Equal(2.0 / 6, result.Top5Error, 9);
        var expectedLoss = -new[] { 0.5, 0.2, 0.0125, 0.1, 0.2, 0.0125 }.Select(p => Math.Log(p)).Average();
        Assert.Equal(expectedLoss, result.Loss, 5);
        var ten = Evaluator.Evaluate(new RedPixelScorer(classes, prep.CropLength), set, prep, tenCrop: true);
        Assert.Equal(result.Top1Error, ten.Top1Error, 9);   // flat images: every crop scores the same
        Assert.Equal("10-crop", ten.Crops);
    }
}
