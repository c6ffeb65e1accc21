using System.Diagnostics;
using AlexNet.Model.Onnx;
using AlexNet.Training.Export;
using AlexNet.Training.Networks;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static TorchSharp.torch;

namespace AlexNet.Training.Tests;

public class ExportTests
{
    const double ParityTolerance = 1e-5;   // relative L2, fp32 (measured about 2e-6)

    public ExportTests() => TorchSetup.Ensure();

    /// <summary>He-normal weights give confident logits: a near-uniform softmax would hide export errors.</summary>
    static AlexNetModule ConfidentModel(AlexNetSpec spec, int seed)
    {
        random.manual_seed(seed);
        var model = new AlexNetModule(spec, new Normalization([120f, 115f, 100f], [60f, 58f, 57f]));
        model.Initialize(InitScheme.Kaiming);
        model.eval();
        return model;
    }

    static LabelSet Labels(int n) => new(Enumerable.Range(0, n).Select(i => $"class {i}").ToArray(),
        Enumerable.Range(0, n).Select(i => $"n{i:D8}").ToArray());

    [Theory]
    [InlineData("compact", LrnForm.BandedConv)]
    [InlineData("compact", LrnForm.Operator)]
    [InlineData("paper", LrnForm.BandedConv)]
    [InlineData("paper", LrnForm.Operator)]
    public void OnnxRuntimeMatchesTorchSharpOnLargeInputs(string preset, LrnForm lrn)
    {
        var spec = AlexNetSpec.FromPreset(preset, preset == "paper" ? 1000 : 10);
        using var model = ConfidentModel(spec, seed: 11);
        using var dir = new TempDir();
        var path = dir.File("model.onnx");
        OnnxExporter.Export(model, Labels(spec.Classes), new Provenance { Dataset = "none" }, path, lrn);

        using var session = new InferenceSession(path);
        foreach (var batch in new[] { 1, 3 })
        {
            using var _ = no_grad();
            var x = randn(batch, 3, spec.InputSize, spec.InputSize) * 20;           // large inputs expose LRN errors
            var (logits, features) = model.Forward(x);
            var expectedProbs = logits.softmax(1).data<float>().ToArray();
            var expectedFeatures = features.data<float>().ToArray();

            var input = new DenseTensor<float>(x.data<float>().ToArray(), [batch, 3, spec.InputSize, spec.InputSize]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxContract.Input, input)]);
            var probs = results.Single(r => r.Name == OnnxContract.Probabilities).AsTensor<float>();
            var feats = results.Single(r => r.Name == OnnxContract.Features).AsTensor<float>();
            Assert.Equal(new[] { batch, spec.Classes }, probs.Dimensions.ToArray());
            Assert.Equal(new[] { batch, spec.FeatureDim }, feats.Dimensions.ToArray());

            var p = probs.ToArray();
            Assert.InRange(Maths.RelativeL2(p, expectedProbs), 0, ParityTolerance);
            Assert.InRange(Maths.RelativeL2(feats.ToArray(), expectedFeatures), 0, ParityTolerance);
            for (var n = 0; n < batch; n++)
            {
                var row = p.AsSpan(n * spec.Classes, spec.Classes);
                var expectedRow = expectedProbs.AsSpan(n * spec.Classes, spec.Classes);
                Assert.Equal(Maths.TopK(expectedRow, 1)[0].Index, Maths.TopK(row, 1)[0].Index);
                Assert.True(Maths.TopK(row, 1)[0].Score > 2f / spec.Classes, "the test model should be confident");
            }
        }
        OnnxChecker.AssertValid(path);
    }

    [Fact]
    public void ExportedFileDescribesItselfAndHasTheDocumentedSignature()
    {
        var spec = AlexNetSpec.Compact(4);
        using var model = ConfidentModel(spec, seed: 5);
        using var dir = new TempDir();
        var path = dir.File("described.onnx");
        var provenance = new Provenance { Dataset = "generated", Epochs = 3, Metrics = new() { ["top1_error"] = 0.25 } };
        OnnxExporter.Export(model, new LabelSet(["cat", "dog", "crane", "crane"], ["n1", "n2", "n3", "n4"]), provenance, path);

        using var session = new InferenceSession(path);
        var input = session.InputMetadata[OnnxContract.Input];
        Assert.Equal(new[] { -1, 3, 56, 56 }, input.Dimensions);
        Assert.Equal(OnnxContract.BatchDim, input.SymbolicDimensions[0]);
        Assert.Equal(new[] { -1, 4 }, session.OutputMetadata[OnnxContract.Probabilities].Dimensions);
        Assert.Equal(new[] { -1, spec.FeatureDim }, session.OutputMetadata[OnnxContract.Features].Dimensions);

        var meta = session.ModelMetadata.CustomMetadataMap;
        Assert.Equal("[\"cat\",\"dog\",\"crane\",\"crane\"]", meta[OnnxContract.Keys.Labels]);
        Assert.Equal("[\"n1\",\"n2\",\"n3\",\"n4\"]", meta[OnnxContract.Keys.Synsets]);
        Assert.Equal("compact", meta[OnnxContract.Keys.Preset]);
        Assert.Equal("56", meta[OnnxContract.Keys.InputSize]);
        Assert.Equal("64", meta[OnnxContract.Keys.ResizeSize]);
        Assert.Equal("[120,115,100]", meta[OnnxContract.Keys.Mean]);
        Assert.Equal("[60,58,57]", meta[OnnxContract.Keys.Std]);
        var back = Provenance.FromJson(meta[OnnxContract.Keys.Provenance]);
        Assert.Equal("generated", back.Dataset);
        Assert.Equal(3, back.Epochs);
        Assert.Equal(0.25, back.Metrics["top1_error"]);
    }

    [Fact]
    public void AFailedExportLeavesThePreviousFileIntact()
    {
        var spec = AlexNetSpec.Compact(2);
        using var model = ConfidentModel(spec, seed: 9);
        using var dir = new TempDir();
        var path = dir.File("model.onnx");
        OnnxExporter.Export(model, new LabelSet(["a", "b"]), new Provenance(), path);
        var before = File.ReadAllBytes(path);

        // Three labels for two classes: the writer throws part-way, after the graph was built.
        Assert.Throws<ArgumentException>(() => OnnxExporter.Export(model, new LabelSet(["a", "b", "c"]), new Provenance(), path));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }
}

/// <summary>ONNX's own checker (Debian's python3-onnx, installed by .ci/run).</summary>
static class OnnxChecker
{
    // Debian's interpreter, where apt's python3-onnx lives (a pyenv python3 earlier on PATH would not have it).
    static string DebianPython => Environment.GetEnvironmentVariable("ALEXNET_PYTHON") ?? "/usr/bin/python3";

    public static void AssertValid(string path)
    {
        var psi = new ProcessStartInfo(DebianPython, ["-c", "import onnx, sys; onnx.checker.check_model(sys.argv[1], full_check=True); print('ok')", path])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0 && stdout.Trim() == "ok", $"onnx.checker rejected {path}: {stderr}");
    }
}
