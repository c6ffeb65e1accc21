using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp.PyBridge;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace AlexNet.Training.Tests;

public class TorchvisionTests
{
    // Relative L2 against PyTorch 1.13 (a different libtorch and different kernels than TorchSharp's), fp32.
    const double PyTorchTolerance = 1e-4;

    readonly ITestOutputHelper output;

    public TorchvisionTests(ITestOutputHelper output)
    {
        TorchSetup.Ensure();
        this.output = output;
    }

    /// <summary>Asserts a relative L2 within the tolerance and reports the measured value.</summary>
    void Close(string what, float[] actual, float[] expected)
    {
        var error = Maths.RelativeL2(actual, expected);
        output.WriteLine($"{what}: relative L2 {error:E2}");
        Assert.InRange(error, 0, PyTorchTolerance);
    }

    static LabelSet Labels(int n) => new(Enumerable.Range(0, n).Select(i => $"class {i}").ToArray(),
        Enumerable.Range(0, n).Select(i => $"n{i:D8}").ToArray());

    [Fact]
    public void TorchvisionAlexNetHas61100840ParametersAndTorchvisionsKeysInItsOrder()
    {
        using var model = new TorchvisionAlexNet(new TorchvisionAlexNetSpec(1000));
        Assert.Equal(61_100_840, model.parameters().Sum(p => p.numel()));
        Assert.Equal(61_100_840, new TorchvisionAlexNetSpec(1000).Parameters);
        Assert.Equal(TorchvisionAlexNetSpec.Keys, model.state_dict().Keys);        // the normalisation is not saved
        foreach (var (key, value) in model.Weights())
            Assert.Equal(model.Spec.Shape(key), value.shape);

        using var _ = no_grad();
        model.eval();
        var (logits, features) = model.Forward(rand(2, 3, 224, 224) * 255);
        Assert.Equal(new long[] { 2, 1000 }, logits.shape);
        Assert.Equal(new long[] { 2, 4096 }, features.shape);
    }

    [Fact]
    public void APyTorchStateDictGivesPyTorchsOutputsInTorchSharpAndInTheExportedOnnx()
    {
        using var dir = new TempDir();
        // Kaiming weights give confident logits: torchvision's default init gives a near-uniform softmax that would
        // hide errors in the probabilities.
        var fx = PyTorchFixture.Run(dir.File("fixture"), "state-dict", "--seed", "7", "--init", "kaiming", "--batch", "2");
        var meta = PyTorchFixture.Json(Path.Combine(fx, "fixture.json"));
        Assert.Equal(61_100_840, meta.GetProperty("parameters").GetInt64());
        Assert.Equal(TorchvisionAlexNetSpec.Keys, meta.GetProperty("keys").EnumerateArray().Select(k => k.GetString()!));
        Assert.StartsWith("1.13", meta.GetProperty("torch").GetString());

        var pixels = PyTorchFixture.Floats(Path.Combine(fx, "pixels.f32"));                   // (2, 3, 224, 224), 0..255
        var expectedLogits = PyTorchFixture.Floats(Path.Combine(fx, "logits.f32"));
        var expectedProbs = PyTorchFixture.Floats(Path.Combine(fx, "probabilities.f32"));
        var expectedFeatures = PyTorchFixture.Floats(Path.Combine(fx, "features.f32"));
        Assert.True(expectedProbs.Max() > 0.05f, "the fixture model should be confident");

        using var model = TorchvisionWeights.LoadModel(Path.Combine(fx, "alexnet.pth"));
        Assert.Equal(1000, model.Spec.Classes);
        Assert.Equal(61_100_840, model.parameters().Sum(p => p.numel()));
        model.eval();
        using (var _ = no_grad())
        {
            var (logits, features) = model.Forward(tensor(pixels, [2, 3, 224, 224]));
            Close("TorchSharp logits", logits.data<float>().ToArray(), expectedLogits);
            Close("TorchSharp probabilities", logits.softmax(1).data<float>().ToArray(), expectedProbs);
            Close("TorchSharp fc7 features", features.data<float>().ToArray(), expectedFeatures);
        }

        var path = dir.File("torchvision.onnx");
        TorchvisionExporter.Export(model, Labels(1000), new Provenance { Dataset = "PyTorch fixture", Note = "seed 7" }, path);
        using (var session = new InferenceSession(path))
        {
            var input = new DenseTensor<float>(pixels, [2, 3, 224, 224]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxContract.Input, input)]);
            var probs = results.Single(r => r.Name == OnnxContract.Probabilities).AsTensor<float>();
            var feats = results.Single(r => r.Name == OnnxContract.Features).AsTensor<float>();
            Assert.Equal(new[] { 2, 1000 }, probs.Dimensions.ToArray());
            Assert.Equal(new[] { 2, 4096 }, feats.Dimensions.ToArray());
            Close("ONNX Runtime probabilities", probs.ToArray(), expectedProbs);
            Close("ONNX Runtime features", feats.ToArray(), expectedFeatures);
            for (var n = 0; n < 2; n++)
                Assert.Equal(Maths.TopK(expectedProbs.AsSpan(n * 1000, 1000), 5).Select(s => s.Index),
                    Maths.TopK(probs.ToArray().AsSpan(n * 1000, 1000), 5).Select(s => s.Index));

            var m = session.ModelMetadata.CustomMetadataMap;
            Assert.Equal("torchvision", m[OnnxContract.Keys.Preset]);
            Assert.Equal("224", m[OnnxContract.Keys.InputSize]);
            Assert.Equal("256", m[OnnxContract.Keys.ResizeSize]);
            Assert.Equal([123.675f, 116.28f, 103.53f], System.Text.Json.JsonSerializer.Deserialize<float[]>(m[OnnxContract.Keys.Mean])!);
            Assert.Equal([58.395f, 57.12f, 57.375f], System.Text.Json.JsonSerializer.Deserialize<float[]>(m[OnnxContract.Keys.Std])!);
            Assert.Contains("torchvision", m[OnnxContract.Keys.Preprocessing]);
            Assert.Equal(1000, System.Text.Json.JsonSerializer.Deserialize<string[]>(m[OnnxContract.Keys.Labels])!.Length);
            Assert.Equal("PyTorch fixture", Provenance.FromJson(m[OnnxContract.Keys.Provenance]).Dataset);
            // A reader that only wants the sizes (the evaluate command) can still read alexnet.spec as an AlexNetSpec.
            var sizes = System.Text.Json.JsonSerializer.Deserialize<AlexNetSpec>(m[OnnxContract.Keys.Spec])!;
            Assert.Equal((224, 256, 1000, "torchvision"), (sizes.InputSize, sizes.ResizeSize, sizes.Classes, sizes.Preset));
        }
        OnnxChecker.AssertValid(path);

        // The service draws conv1 from the imported file's own weights: the reader finds features.0.weight, value for value.
        var conv1 = OnnxWeightReader.FirstConvWeights(path).Single();
        Assert.Equal(new long[] { 64, 3, 11, 11 }, conv1.Dims);
        Assert.Equal(model.Weights().Single(w => w.Key == "features.0.weight").Value.data<float>().ToArray(), conv1.Values);
        Assert.NotNull(AlexNet.Api.Inference.Conv1Picture.Draw([conv1], bgr: false));
    }

    [Fact]
    public void PyTorchsOwnOnnxExportRunsInOnnxRuntimeWithPyTorchsTop5()
    {
        // The third-party file the API side uses: torch.onnx.export, input `input` (normalised), output `logits`.
        using var dir = new TempDir();
        var fx = PyTorchFixture.Run(dir.File("fixture"), "onnx", "--seed", "3", "--init", "kaiming", "--classes", "20", "--opset", "13");
        var x = PyTorchFixture.Floats(Path.Combine(fx, "input.f32"));
        var expected = PyTorchFixture.Floats(Path.Combine(fx, "logits.f32"));
        var top5 = PyTorchFixture.Json(Path.Combine(fx, "top5.json")).EnumerateArray().Select(e => e.GetProperty("index").GetInt32()).ToArray();

        using var session = new InferenceSession(Path.Combine(fx, "alexnet.onnx"));
        Assert.Equal("input", session.InputMetadata.Keys.Single());
        Assert.Equal("logits", session.OutputMetadata.Keys.Single());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(x, [1, 3, 224, 224]))]);
        var logits = results[0].AsTensor<float>().ToArray();
        Close("ONNX Runtime logits of torch.onnx.export's file", logits, expected);
        Assert.Equal(top5, Maths.TopK(logits, 5).Select(s => s.Index));
        OnnxChecker.AssertValid(Path.Combine(fx, "alexnet.onnx"));
    }

    [Fact]
    public void AStateDictOfAnotherNetIsRefusedNamingTheFileAndTheMissingKeys()
    {
        using var dir = new TempDir();
        var path = dir.File("other.pth");
        using (var other = nn.Sequential(nn.Linear(4, 3))) other.save_py(path);             // keys 0.weight, 0.bias
        var e = Assert.Throws<InvalidDataException>(() => TorchvisionWeights.LoadModel(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("classifier.6.weight", e.Message);

        File.WriteAllBytes(dir.File("junk.pth"), [1, 2, 3, 4, 5, 6]);
        var junk = Assert.Throws<InvalidDataException>(() => TorchvisionWeights.Read(dir.File("junk.pth")));
        Assert.Contains("torch.save", junk.Message);
    }

    [Fact]
    public void ALegacyFormatFileGetsAnErrorThatSaysHowToResaveIt()
    {
        // Files saved before PyTorch 1.6 (or with _use_new_zipfile_serialization=False) are not zip archives; the
        // weights torchvision publishes for AlexNet date from 2017. PyBridge reads only the zip format.
        using var dir = new TempDir();
        var path = dir.File("legacy.pth");
        PyTorchFixture.Python("-c", "import sys, torch; torch.save({'features.0.bias': torch.zeros(64)}, sys.argv[1], " +
                                    "_use_new_zipfile_serialization=False)", path);
        var e = Assert.Throws<InvalidDataException>(() => TorchvisionWeights.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("torch.save(torch.load(", e.Message);
    }

    [Fact]
    public void WeightsSavedForPyTorchReadBackWithTheSameValues()
    {
        using var dir = new TempDir();
        random.manual_seed(4);
        using var model = new TorchvisionAlexNet(new TorchvisionAlexNetSpec(5));
        TorchvisionWeights.Save(model, dir.File("five.pth"));
        using var back = TorchvisionWeights.LoadModel(dir.File("five.pth"));
        Assert.Equal(5, back.Spec.Classes);
        var original = model.state_dict();
        foreach (var (key, value) in back.Weights())
            Assert.True(value.allclose(original[key], rtol: 0, atol: 0), key);
    }

    [Fact]
    public void TheGraphIsOnlyWrittenAt224WhereAdaptivePoolingIsTheIdentity()
    {
        using var model = new TorchvisionAlexNet(new TorchvisionAlexNetSpec(3));
        var weights = TorchvisionWeights.ForOnnx(model);
        var metadata = new AlexNet.Model.Onnx.ModelMetadata(["a", "b", "c"], null, new Provenance());
        var e = Assert.Throws<ArgumentException>(() => TorchvisionOnnxGraph.Build(new TorchvisionAlexNetSpec(3, InputSize: 256), weights, metadata));
        Assert.Contains("224", e.Message);
        var wrongClasses = Assert.Throws<ArgumentException>(() => TorchvisionOnnxGraph.Build(new TorchvisionAlexNetSpec(4), weights, metadata));
        Assert.Contains("classifier.6.weight", wrongClasses.Message);
    }
}
