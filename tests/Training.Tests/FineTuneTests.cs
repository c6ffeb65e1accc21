using AlexNet.Training.Commands;
using System.Text.Json;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace AlexNet.Training.Tests;

public class FineTuneTests
{
    readonly ITestOutputHelper output;

    public FineTuneTests(ITestOutputHelper output)
    {
        TorchSetup.Ensure();
        this.output = output;
    }

    static readonly string[] NewClasses = ["cats", "dogs", "owls"];

    /// <summary>Top-1 error of an exported model on a folder, through ONNX Runtime (what the service runs).</summary>
    static (double Top1Error, int Images) OnnxError(string onnx, string folder)
    {
        var results = Cli.EvaluateCommand(null, onnx, folder, null, tenCrop: false, limit: null);
        return (results[0].Top1Error, results[0].Images);
    }

    static Dictionary<string, string> Metadata(string onnx)
    {
        using var session = new InferenceSession(onnx);
        return new(session.ModelMetadata.CustomMetadataMap);
    }

    [Fact]
    public void RetrainingTheLastLayerOfTorchvisionWeightsIsOneCommandThatBeatsTheStartingModelAndExports()
    {
        using var dir = new TempDir();
        // He-normal weights stand in for pretrained ones: activations keep their scale through the layers, as in a
        // trained net (torchvision's default init shrinks them layer by layer).
        var fx = PyTorchFixture.Run(dir.File("fixture"), "state-dict", "--seed", "5", "--init", "kaiming", "--batch", "1");
        var pth = Path.Combine(fx, "alexnet.pth");
        var data = Fixtures.ImageFolder(dir.File("data"), NewClasses, trainPerClass: 8, valPerClass: 4, seed: 9);
        var model = dir.File("model.onnx");

        // The stand-in's fc7 features have an L2 norm of about 350, so the last layer takes a smaller lr than the
        // default 0.001 (at 0.001 the loss jumps to about 27 and the val error swings between 33% and 67%).
        var (code, stdout, stderr) = CliTests.Run("finetune", "--from", pth, "--data", data, "--freeze", "--epochs", "3", "--lr", "0.0001",
            "--batch-size", "8", "--seed", "1", "--out", dir.File("run"), "--export", model);
        output.WriteLine(stdout);
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(Path.GetFullPath(model), stdout.Trim().Split('\n')[^1].Trim());
        Assert.Contains("before fine-tuning: val top-1 error", stdout);
        Assert.Equal(NewClasses, File.ReadAllLines(dir.File("run/labels.txt")));
        Assert.Equal(4, File.ReadAllLines(dir.File("run/metrics.csv")).Length);

        var meta = Metadata(model);
        Assert.Equal("torchvision", meta[OnnxContract.Keys.Preset]);
        Assert.Equal(NewClasses, JsonSerializer.Deserialize<string[]>(meta[OnnxContract.Keys.Labels])!);
        var provenance = Provenance.FromJson(meta[OnnxContract.Keys.Provenance]);
        Assert.Contains("alexnet.pth", provenance.Init);
        var before = provenance.Metrics["val_top1_error_before"];
        var (after, images) = OnnxError(model, Path.Combine(data, "val"));
        output.WriteLine($"val top-1 error: {before:P1} before, {after:P1} after (ONNX Runtime, {images} images)");
        Assert.Equal(12, images);
        Assert.True(after < before, $"fine-tuning should lower the val error: {before:P1} before, {after:P1} after");
        Assert.InRange(after, 0, 0.34);                                    // chance is 67%
        Assert.InRange(Math.Abs(after - provenance.Metrics["val_top1_error"]), 0, 1.0 / images + 1e-9);   // TorchSharp agrees
        OnnxChecker.AssertValid(model);

        // --freeze: every pretrained weight is exactly as loaded; only classifier.6 changed, and it has 3 rows now.
        var original = TorchvisionWeights.Read(pth);
        var tuned = TorchvisionWeights.Read(dir.File("run/best.pth"));
        foreach (var key in TorchvisionAlexNetSpec.Keys.Except(TorchvisionWeights.LastLayerKeys))
            Assert.True(tuned[key].allclose(original[key], rtol: 0, atol: 0), $"{key} changed under --freeze");
        Assert.Equal(new long[] { 3, 4096 }, tuned["classifier.6.weight"].shape);
    }

    [Fact]
    public void FineTuningOurCheckpointReplacesFc8AndTrainsThePretrainedLayersTenTimesSlower()
    {
        using var dir = new TempDir();
        var pretrained = PretrainedCompactCheckpoint(dir.File("pretrained.ckpt"), classes: 10);
        var data = Fixtures.ImageFolder(dir.File("data"), NewClasses, trainPerClass: 10, valPerClass: 4, seed: 4);
        var o = new FineTuneOptions
        {
            From = pretrained, Data = data, Epochs = 4, BatchSize = 8, LearningRate = 0.01, Seed = 2, Output = dir.File("run"), EvalBatchSize = 16,
        };

        random.manual_seed(0);
        using (var net = PretrainedNet.Open(pretrained, 3, DevicePlacement.Parse("cpu")))
        {
            var (optimizer, scales, _) = FineTuner.NewOptimizer(net, o);
            Assert.Equal([1.0, 0.1], scales);
            var groups = optimizer.ParamGroups.ToArray();
            Assert.Equal([0.01, 0.001], groups.Select(g => Math.Round(g.LearningRate, 6)));
            var spec = AlexNetSpec.Compact(3);
            Assert.Equal(3, net.LastLayer.weight!.shape[0]);
            Assert.Equal(spec.FeatureDim * 3 + 3, net.LastLayer.parameters().Sum(p => p.numel()));
            Assert.Equal(net.Module.parameters().Sum(p => p.numel()) - (spec.FeatureDim * 3 + 3), net.PretrainedParameters.Sum(p => p.numel()));
        }

        var report = new ListReport();
        var result = new FineTuner(report).Run(o);
        output.WriteLine($"val top-1 error: {result.Before.Top1Error:P1} before, {result.Best.Top1Error:P1} at the best epoch");
        Assert.True(result.Best.Top1Error < result.Before.Top1Error,
            $"fine-tuning should lower the val error: {result.Before.Top1Error:P1} before, {result.Best.Top1Error:P1} after");
        Assert.Equal(4, result.State.History.Count);

        // best.ckpt is an ordinary checkpoint of 3 classes: export and evaluate --checkpoint read it.
        var (header, tuned) = Checkpoint.Load(dir.File("run/best.ckpt"));
        using (tuned)
        {
            Assert.Equal(NewClasses, header.Labels.Names);
            Assert.Equal(3, header.Spec.Classes);
            Assert.Equal("compact", header.Spec.Preset);
            var (_, source) = Checkpoint.Load(pretrained);
            using (source)
            {
                var conv1 = tuned.Layers().First().Weight;
                Assert.False(conv1.allclose(source.Layers().First().Weight, rtol: 0, atol: 0), "pretrained layers should train without --freeze");
                Assert.Equal(source.Normalization.Mean, tuned.Normalization.Mean);     // the pretrained net's normalisation is kept
            }
        }
        var model = dir.File("tuned.onnx");
        FineTuner.Export(o, result, model);
        var (after, _) = OnnxError(model, Path.Combine(data, "val"));
        Assert.InRange(Math.Abs(after - result.Best.Top1Error), 0, 1.0 / 12 + 1e-9);
        Assert.Equal(NewClasses, JsonSerializer.Deserialize<string[]>(Metadata(model)[OnnxContract.Keys.Labels])!);
    }

    /// <summary>A compact two-tower checkpoint with He-normal weights, standing in for a trained one.</summary>
    static string PretrainedCompactCheckpoint(string path, int classes)
    {
        random.manual_seed(3);
        var spec = AlexNetSpec.Compact(classes);
        var norm = new Normalization([120f, 115f, 100f], [60f, 58f, 57f]);
        using var model = new AlexNetModule(spec, norm);
        model.Initialize(InitScheme.Kaiming);
        var labels = new LabelSet(Enumerable.Range(0, classes).Select(i => $"old {i}").ToArray());
        var header = new CheckpointHeader(new TrainOptions { Preset = "compact" }, new TrainState { Epoch = 5 }, spec, norm, labels, null, null);
        Checkpoint.Save(path, header, model, null);
        return path;
    }

    [Fact]
    public void ImportTorchvisionChecksTheLabelsEvaluatesAndWritesAServableModel()
    {
        using var dir = new TempDir();
        var fx = PyTorchFixture.Run(dir.File("fixture"), "state-dict", "--seed", "2", "--classes", "3", "--batch", "1");
        var pth = Path.Combine(fx, "alexnet.pth");
        var data = Fixtures.ImageFolder(dir.File("data"), NewClasses, trainPerClass: 0, valPerClass: 2);
        File.WriteAllLines(dir.File("two.txt"), ["cats", "dogs"]);
        File.WriteAllLines(dir.File("three.txt"), NewClasses);

        var (badCode, _, badErr) = CliTests.Run("import-torchvision", "--weights", pth, "--labels", dir.File("two.txt"), "--out", dir.File("bad.onnx"));
        Assert.Equal(2, badCode);
        Assert.StartsWith("error: ", badErr.Trim());
        Assert.Contains("2 labels", badErr);
        Assert.False(File.Exists(dir.File("bad.onnx")));

        var model = dir.File("imported.onnx");
        var (code, stdout, stderr) = CliTests.Run("import-torchvision", "--weights", pth, "--labels", dir.File("three.txt"), "--out", model,
            "--data", Path.Combine(data, "val"));
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains($"{new TorchvisionAlexNetSpec(3).Parameters:N0} parameters, 3 classes", stdout);     // 57,016,131
        Assert.Contains("images 6", stdout);
        Assert.Equal(Path.GetFullPath(model), stdout.Trim().Split('\n')[^1].Trim());
        var meta = Metadata(model);
        Assert.Equal(NewClasses, JsonSerializer.Deserialize<string[]>(meta[OnnxContract.Keys.Labels])!);
        Assert.True(Provenance.FromJson(meta[OnnxContract.Keys.Provenance]).Metrics.ContainsKey("val_top1_error"));
    }

    [Fact]
    public void HelpShowsTheImportAndFineTuneCommands()
    {
        var (code, stdout, _) = CliTests.Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("import-torchvision", stdout);
        Assert.Contains("finetune", stdout);
        var (ftCode, ftHelp, _) = CliTests.Run("finetune", "--help");
        Assert.Equal(0, ftCode);
        foreach (var option in new[] { "--from", "--data", "--freeze", "--pretrained-lr-scale", "--export" }) Assert.Contains(option, ftHelp);
    }
}
