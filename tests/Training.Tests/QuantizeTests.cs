using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using AlexNet.Api.Endpoints;
using AlexNet.Training.Data;
using AlexNet.Training.Prediction;
using AlexNet.Training.Quantization;

namespace AlexNet.Training.Tests;

/// <summary>
/// alexnet-train quantize: the int8 file passes ONNX's own checker, runs in ONNX Runtime and in the service with the
/// float file's contract, agrees with its float parent on images it was not calibrated on, and the same calibration
/// gives the same bytes.
/// </summary>
public sealed class QuantizeTests
{
    static string Model(string path, int seed) => Fixtures.CompactModel(path, seed);

    /// <summary>A folder of PNGs in class folders: generated shapes and noise, <paramref name="count"/> in all.</summary>
    static string Images(string dir, int count, int seed)
    {
        for (var i = 0; i < count; i++)
        {
            var folder = Directory.CreateDirectory(Path.Combine(dir, $"class{i % 3}")).FullName;
            File.WriteAllBytes(Path.Combine(folder, $"{i:D3}.png"), TestImages.Png(seed * 1000 + i, 40 + i % 7 * 5, 36 + i % 5 * 6));
        }
        return dir;
    }

    static (int Code, string Out, string Err) Quantize(string model, string calibration, string output, params string[] more) =>
        CliTests.Run(["quantize", "--model", model, "--calibration", calibration, "--out", output, .. more]);

    [Fact]
    public async Task AQuantizedModelPassesOnnxsCheckerRunsAndServesWithTheFloatModelsContract()
    {
        using var dir = new TempDir();
        var parent = Model(dir.File("model.onnx"), seed: 3);
        var (code, stdout, stderr) = Quantize(parent, Images(dir.File("calibration"), 24, seed: 1), dir.File("model.int8.onnx"),
            "--images", "16", "--check-images", "8");
        Assert.True(code == 0, stderr + stdout);
        var int8 = dir.File("model.int8.onnx");

        // ONNX's own checker (full_check: shapes and types inferred through every node), and what the file is made of.
        var report = dir.File("check.json");
        PyTorchFixture.Python("-c", """
            import collections, json, sys, onnx
            m = onnx.load(sys.argv[1])
            onnx.checker.check_model(m, full_check=True)
            ops = collections.Counter(n.op_type for n in m.graph.node)
            types = {t.name: t.data_type for t in m.graph.initializer}
            json.dump({"ops": ops, "types": types, "outputs": [o.name for o in m.graph.output]}, open(sys.argv[2], "w"))
            """, int8, report);
        var check = JsonDocument.Parse(File.ReadAllText(report)).RootElement;
        var ops = check.GetProperty("ops");
        Assert.Equal(7, ops.GetProperty("Conv").GetInt32());                     // five layers' Convs and two LRN bands (kept float)
        Assert.True(ops.GetProperty("QuantizeLinear").GetInt32() >= 8, ops.ToString());
        Assert.True(ops.GetProperty("DequantizeLinear").GetInt32() >= 8 + 8 + 8, ops.ToString());   // activations, weights, biases
        Assert.Equal(3, check.GetProperty("types").GetProperty("conv1.weight.quantized").GetInt32());   // INT8
        Assert.Equal(6, check.GetProperty("types").GetProperty("fc7.bias.fc7.quantized").GetInt32());   // INT32
        Assert.False(check.GetProperty("types").TryGetProperty("conv1.weight", out _), "the float conv1 weight is still in the file");

        // The same inputs and outputs (names, element types, shapes) and every metadata entry of the parent.
        using (var a = new InferenceSession(parent))
        using (var b = new InferenceSession(int8))
        {
            Assert.Equal(Signature(a.InputMetadata), Signature(b.InputMetadata));
            Assert.Equal(Signature(a.OutputMetadata), Signature(b.OutputMetadata));
            var (ma, mb) = (a.ModelMetadata.CustomMetadataMap, b.ModelMetadata.CustomMetadataMap);
            foreach (var (key, value) in ma) Assert.Equal(value, mb[key]);
            Assert.Equal("int8", mb[OnnxContract.Keys.Precision]);
            var info = JsonDocument.Parse(mb[OnnxContract.Keys.Quantization]).RootElement;
            Assert.Equal(16, info.GetProperty("calibrationImages").GetInt32());
            Assert.Equal(8, info.GetProperty("quantizedOps").GetInt32());
            Assert.StartsWith("sha256:", info.GetProperty("parent").GetString());
        }

        // conv1's kernels are read back through their DequantizeLinear: the float ones within half a step.
        var (fw, qw) = (AlexNet.Model.Onnx.OnnxWeightReader.FirstConvWeights(parent), AlexNet.Model.Onnx.OnnxWeightReader.FirstConvWeights(int8));
        Assert.Equal(fw.Count, qw.Count);
        for (var t = 0; t < fw.Count; t++)
        {
            Assert.Equal(fw[t].Dims, qw[t].Dims);
            var perKernel = fw[t].Values.Length / (int)fw[t].Dims[0];
            for (var k = 0; k < fw[t].Dims[0]; k++)
            {
                var kernel = fw[t].Values.AsSpan(k * perKernel, perKernel);
                var step = Math.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(kernel)) / 63f;
                for (var i = 0; i < perKernel; i++)
                    Assert.True(Math.Abs(kernel[i] - qw[t].Values[k * perKernel + i]) <= step / 2 * 1.0001f + 1e-12f, $"kernel {k} value {i}: {kernel[i]} vs {qw[t].Values[k * perKernel + i]}, step {step}, dims {string.Join(",", qw[t].Dims)} {qw[t].Name}");
            }
        }

        // The service serves it with no new setting, says so, and its gallery vectors carry its own fingerprint.
        // The float parent beside it under another name: GET /api/models tells them apart.
        await using var service = new ApiFactory(int8, dir.File("g.db"),
            new Dictionary<string, string?> { ["Models:0:Name"] = "float", ["Models:0:Path"] = parent });
        var client = await service.ReadyClientAsync();
        var model = await client.GetFromJsonAsync<JsonElement>("/api/model");
        Assert.Equal("int8", model.GetProperty("precision").GetString());
        var models = (await client.GetFromJsonAsync<JsonElement>("/api/models")).GetProperty("models");
        Assert.Equal(["int8", "fp32"], models.EnumerateArray().Select(m => m.GetProperty("precision").GetString()));
        Assert.Contains(model.GetProperty("quantization").GetProperty("method").GetString(), new[] { "minmax", "percentile" });
        var fingerprint = model.GetProperty("fingerprint").GetString();
        using var classify = await client.PostAsync("/api/classify", Form(TestImages.Png(5)));
        Assert.Equal(HttpStatusCode.OK, classify.StatusCode);
        using var add = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery")
        {
            Content = Form(TestImages.Png(6)),
            Headers = { { "X-Api-Key", ApiFactory.Key } },
        });
        Assert.Equal(HttpStatusCode.Created, add.StatusCode);
        var added = (await add.Content.ReadFromJsonAsync<JsonElement>())!;
        Assert.Equal(fingerprint, added.GetProperty("model").GetString());
        var id = added.GetProperty("items")[0].GetProperty("id").GetInt64();
        var similar = await client.GetFromJsonAsync<JsonElement>($"/api/gallery/{id}/similar?k=1");
        Assert.Equal(fingerprint, similar.GetProperty("model").GetString());
        Assert.NotEqual(OnnxClassifierFingerprint(parent), fingerprint);
        using var conv1 = await client.GetAsync("/api/model/conv1.png");
        Assert.Equal(HttpStatusCode.OK, conv1.StatusCode);
        Assert.Equal("image/png", conv1.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public void TheSameCalibrationGivesTheSameBytesAndOtherImagesOtherBytes()
    {
        using var dir = new TempDir();
        var parent = Model(dir.File("model.onnx"), seed: 8);
        var images = Images(dir.File("calibration"), 12, seed: 2);
        string[] args = ["--images", "8", "--check-images", "4"];
        foreach (var name in new[] { "one", "two" })
        {
            var (code, stdout, stderr) = Quantize(parent, images, dir.File($"{name}.onnx"), args);
            Assert.True(code == 0, stderr + stdout);
        }
        Assert.Equal(File.ReadAllBytes(dir.File("one.onnx")), File.ReadAllBytes(dir.File("two.onnx")));

        // Not because the images do not matter: other images give other ranges, so other bytes.
        var (c, o, e) = Quantize(parent, Images(dir.File("other"), 12, seed: 3), dir.File("three.onnx"), args);
        Assert.True(c == 0, e + o);
        Assert.NotEqual(File.ReadAllBytes(dir.File("one.onnx")), File.ReadAllBytes(dir.File("three.onnx")));
    }

    /// <summary>The bundled demo model (trained on Fashion-MNIST) calibrated on 200 of its held-out training images, then
    /// compared with its float self on the first 200 test images: the bounds are the issue's (top-1 agreement at least
    /// 99.5%, features' cosine at least 0.99 on average) with one image of slack for CPUs whose int8 kernels round
    /// differently.</summary>
    [Fact]
    public void TheDemoModelInInt8AgreesWithItsFloatSelfOnTestImages()
    {
        using var dir = new TempDir();
        var demo = FashionMnistSamples.DemoModel();
        var (code, stdout, stderr) = CliTests.Run("quantize", "--model", demo, "--fashion-mnist", FashionMnistSamples.Folder,
            "--images", "200", "--check-images", "100", "--out", dir.File("demo.int8.onnx"));
        Assert.True(code == 0, stderr + stdout);

        using var a = new OnnxPredictor(demo, null);
        using var b = new OnnxPredictor(dir.File("demo.int8.onnx"), null);
        var test = ImageSet.FromIdx(Path.Combine(FashionMnistSamples.Folder, "t10k-images-idx3-ubyte.gz"),
            Path.Combine(FashionMnistSamples.Folder, "t10k-labels-idx1-ubyte.gz"), a.Preprocessor, LabelSet.FashionMnist, limit: 200);
        var agreement = Agreement.Measure(a, b, test, [a.Preprocessor.Center], labelled: true);

        Assert.True(agreement.SameTop1 >= 198, agreement.Text);
        Assert.True(agreement.MeanCosine >= 0.99, agreement.Text);
        Assert.True(agreement.MinCosine >= 0.9, agreement.Text);
        Assert.True(Math.Abs(agreement.AccuracyA!.Value - agreement.AccuracyB!.Value) <= 0.015, agreement.Text);
    }

    [Fact]
    public void AnInt8FileIsNotQuantizedAgainAndNothingIsWritten()
    {
        using var dir = new TempDir();
        var parent = Model(dir.File("model.onnx"), seed: 4);
        var images = Images(dir.File("calibration"), 6, seed: 4);
        var (code, stdout, stderr) = Quantize(parent, images, dir.File("int8.onnx"), "--images", "4");
        Assert.True(code == 0, stderr + stdout);

        (code, stdout, stderr) = Quantize(dir.File("int8.onnx"), images, dir.File("again.onnx"));
        Assert.NotEqual(0, code);
        Assert.Contains("already int8", stderr + stdout);
        Assert.False(File.Exists(dir.File("again.onnx")));
    }

    /// <summary>A file made by PyTorch's own exporter (torch.onnx.export of torchvision's AlexNet, 20 classes, Kaiming
    /// weights), served through a profile: quantize reads its preprocessing from the profile, copies the profile beside
    /// the int8 file, and the service serves that with no new setting.</summary>
    [Fact]
    public async Task AThirdPartyFileWithAProfileIsQuantizedAndServedThroughItsProfile()
    {
        using var dir = new TempDir();
        var export = PyTorchFixture.Run(dir.File("torchvision"), "onnx", "--seed", "3", "--init", "kaiming", "--classes", "20", "--opset", "13");
        File.WriteAllLines(Path.Combine(export, "labels.txt"), Enumerable.Range(0, 20).Select(i => $"class-{i:00}"));
        var parent = Path.Combine(export, "alexnet.onnx");
        File.WriteAllText(ModelProfile.SidecarPath(parent), JsonSerializer.Serialize(new
        {
            input = "input", inputSize = 224, resize = "crop", resizeSize = 256, channelOrder = "rgb", pixelRange = 1,
            mean = new[] { 0.485, 0.456, 0.406 }, std = new[] { 0.229, 0.224, 0.225 }, scores = "logits", scoresAre = "logits",
            labels = "labels.txt",
        }));
        var int8 = Path.Combine(export, "alexnet.int8.onnx");
        var (code, stdout, stderr) = Quantize(parent, Images(dir.File("calibration"), 14, seed: 6), int8, "--images", "6", "--check-images", "8");
        Assert.True(code == 0, stderr + stdout);
        Assert.True(File.Exists(ModelProfile.SidecarPath(int8)), stdout);
        PyTorchFixture.Python("-c", "import onnx, sys; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)", int8);

        using (var a = new OnnxPredictor(parent, null))
        using (var b = new OnnxPredictor(int8, null))
        {
            var images = ImageSource.Load(dir.File("calibration"), null, false, 0, 42, a.Preprocessor, _ => { }).Images;
            var agreement = Agreement.Measure(a, b, images.Subset([.. Enumerable.Range(6, 8)], "check"), [a.Preprocessor.Center], labelled: false);
            Assert.True(agreement.SameTop1 >= 6, agreement.Text);                   // random weights: near-even logits, so some slack
        }

        await using var service = new ApiFactory(int8, dir.File("g.db"),
            new Dictionary<string, string?> { ["Inference:ProfilePath"] = ModelProfile.SidecarPath(int8) });
        var client = await service.ReadyClientAsync();
        var model = await client.GetFromJsonAsync<JsonElement>("/api/model");
        Assert.Equal("int8", model.GetProperty("precision").GetString());
        Assert.Equal("input", model.GetProperty("profile").GetProperty("input").GetString());
        using var classify = await client.PostAsync("/api/classify", Form(TestImages.Png(7, 300, 240)));
        Assert.Equal(HttpStatusCode.OK, classify.StatusCode);
    }

    [Fact]
    public void ThePercentileRangeCutsBothTailsAndAHundredPercentKeepsThem()
    {
        var histogram = new long[100];
        Array.Fill(histogram, 100);
        (histogram[0], histogram[99]) = (1, 1);                      // one outlier at each end of [0, 100]
        Assert.Equal(new AlexNet.Model.Onnx.Quantization.TensorRange(1f, 99f), Calibration.PercentileRange(histogram, 0f, 100f, 99.9));
        Assert.Equal(new AlexNet.Model.Onnx.Quantization.TensorRange(0f, 100f), Calibration.PercentileRange(histogram, 0f, 100f, 100));
    }

    static MultipartFormDataContent Form(byte[] image)
    {
        var part = new ByteArrayContent(image);
        part.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        return new MultipartFormDataContent { { part, "image", "upload.png" } };
    }

    static string OnnxClassifierFingerprint(string path) => AlexNet.Api.Inference.OnnxClassifier.Fingerprint(path);

    static string[] Signature(IReadOnlyDictionary<string, NodeMetadata> nodes) =>
        [.. nodes.Select(n => $"{n.Key}:{n.Value.ElementType.Name}[{string.Join(",", n.Value.Dimensions)}]").Order()];
}
