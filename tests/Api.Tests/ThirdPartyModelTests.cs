using AlexNet.Model.Onnx;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Api.Tests;

/// <summary>
/// Two torchvision AlexNets exported by PyTorch's own torch.onnx.export (tests/fixtures/torchvision_fixture.py, run
/// under Debian's python3-torch). One, 20 classes, as torch.onnx.export writes it (input `input` normalised, output
/// `logits`, dynamic batch), with the random 224x224 picture it ran (pixels.png). One, 1000 ImageNet classes, shaped
/// like the ONNX Model Zoo's bvlcalexnet (input `data_0` BGR minus Caffe's means with a fixed batch of 1, output
/// `softmaxout_1` softmaxed), run by PyTorch on a 320x240 picture made here (picture.png) through Caffe's warp to
/// 256x256 and central 224 crop. Each folder holds PyTorch's top-5.
/// </summary>
public sealed class PyTorchExports : IDisposable
{
    readonly TempDir _dir = new();
    public const int Classes = 20;

    public PyTorchExports()
    {
        Torchvision = PyTorchFixture.Run(_dir.File("torchvision"), "onnx", "--seed", "3", "--init", "kaiming", "--classes", $"{Classes}", "--opset", "13");
        File.WriteAllLines(Path.Combine(Torchvision, "labels.txt"), Labels);
        Picture = _dir.File("picture.png");
        File.WriteAllBytes(Picture, TestImages.Png(11, 320, 240));
        Caffe = PyTorchFixture.Run(_dir.File("caffe"), "onnx", "--seed", "5", "--init", "kaiming", "--classes", "1000", "--opset", "13",
            "--style", "caffe", "--image", Picture);
    }

    public static string[] Labels { get; } = [.. Enumerable.Range(0, Classes).Select(i => $"class-{i:00}")];
    public string Torchvision { get; }
    public string Caffe { get; }
    public string Picture { get; }

    /// <summary>PyTorch's top-5 for pixels.png: (index, probability), best first.</summary>
    public static (int Index, float Probability)[] Top5(string dir) =>
        [.. PyTorchFixture.Json(Path.Combine(dir, "top5.json")).EnumerateArray()
            .Select(e => (e.GetProperty("index").GetInt32(), (float)e.GetProperty("probability").GetDouble()))];

    public void Dispose() => _dir.Dispose();
}

public sealed class ThirdPartyModelTests(PyTorchExports exports) : IClassFixture<PyTorchExports>, IDisposable
{
    readonly TempDir _dir = new();

    internal static string WriteProfile(string path, object profile)
    {
        File.WriteAllText(path, JsonSerializer.Serialize(profile));
        return path;
    }

    /// <summary>torchvision's preprocessing. resizeSize 224: the 224x224 upload goes in untouched, so the service's
    /// input is exactly the picture PyTorch ran.</summary>
    static object TorchvisionProfile => new
    {
        input = "input", inputSize = 224, resize = "crop", resizeSize = 224, channelOrder = "rgb", pixelRange = 1,
        mean = new[] { 0.485, 0.456, 0.406 }, std = new[] { 0.229, 0.224, 0.225 }, scores = "logits", scoresAre = "logits",
        labels = "labels.txt",
    };

    static void AssertTop5(string dir, ImageClassification answer, IReadOnlyList<string> labels, float tolerance)
    {
        var expected = PyTorchExports.Top5(dir);
        Assert.Equal(expected.Select(e => e.Index), answer.Top.Select(s => s.Index));
        foreach (var ((_, p), s) in expected.Zip(answer.Top))
        {
            Assert.True(Math.Abs(p - s.Probability) < tolerance, $"class {s.Index}: PyTorch {p}, the service {s.Probability}");
            Assert.Equal(labels[s.Index], s.Label);
        }
    }

    /// <summary>A profile shipped in the repository's models/profiles.</summary>
    static string ShippedProfile(string name) => Path.Combine(ContainerTests.Repo(), "models", "profiles", name);

    [Fact]
    public async Task TorchOnnxExportServesPyTorchsTop5ThroughTheApi()
    {
        var profile = WriteProfile(Path.Combine(exports.Torchvision, "torchvision.profile.json"), TorchvisionProfile);
        await using var factory = new ApiFactory(Path.Combine(exports.Torchvision, "alexnet.onnx"), _dir.File("gallery.db"),
            new Dictionary<string, string?> { ["Inference:ProfilePath"] = profile });
        var client = await factory.ReadyClientAsync();
        var picture = File.ReadAllBytes(Path.Combine(exports.Torchvision, "pixels.png"));

        var answer = await (await client.PostAsync("/api/classify?k=5", Http.Raw(picture))).JsonAsync<ClassifyResponse>();
        AssertTop5(exports.Torchvision, answer.Results.Single(), PyTorchExports.Labels, 1e-4f);   // the same pixels: only float rounding

        var model = await client.GetFromJsonAsync<JsonElement>("/api/model");
        Assert.Equal(0, model.GetProperty("featureDim").GetInt32());
        Assert.Equal("input", model.GetProperty("profile").GetProperty("input").GetString());
        Assert.Equal("logits", model.GetProperty("profile").GetProperty("scoresAre").GetString());
        Assert.Contains("+profile:", model.GetProperty("fingerprint").GetString());

        // No feature output declared: features and the gallery say so (409), and nothing is stored.
        using var features = await client.PostAsync("/api/features", Http.Raw(picture));
        Assert.Equal(HttpStatusCode.Conflict, features.StatusCode);
        Assert.Equal("application/problem+json", features.Content.Headers.ContentType?.MediaType);
        Assert.Contains("no feature output", await features.Content.ReadAsStringAsync());
        using var add = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Form(picture) }.WithKey());
        Assert.Equal(HttpStatusCode.Conflict, add.StatusCode);
        Assert.Equal(0, (await client.GetFromJsonAsync<GalleryListResponse>("/api/gallery"))!.Total);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/ready")).StatusCode);
    }

    /// <summary>GET /api/model/conv1.png for torch.onnx.export's files: drawn from the file's own first Conv weights,
    /// tile by tile the weights PyTorch had (11x11 kernels at 4 px a weight, tiles of 46 px, 24 a row).</summary>
    [Fact]
    public async Task Conv1PictureOfAThirdPartyFileIsDrawnFromItsOwnWeights()
    {
        foreach (var (dir, profile) in new[] { (exports.Torchvision, WriteProfile(Path.Combine(exports.Torchvision, "tv.profile.json"), TorchvisionProfile)),
            (exports.Caffe, ShippedProfile("bvlcalexnet.profile.json")) })
        {
            await using var factory = new ApiFactory(Path.Combine(dir, "alexnet.onnx"), _dir.File($"{Path.GetFileName(dir)}.db"),
                new Dictionary<string, string?> { ["Inference:ProfilePath"] = profile });
            var client = await factory.ReadyClientAsync();
            using var response = await client.GetAsync("/api/model/conv1.png");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var picture = SixLabors.ImageSharp.Image.Load<Rgb24>(await response.Content.ReadAsByteArrayAsync());
            const int px = 4, tile = 11 * px + 2, perRow = 24;
            Assert.Equal((perRow * tile + 2, 3 * tile + 2), (picture.Width, picture.Height));   // 64 kernels: three rows
            if (dir != exports.Torchvision) continue;   // the Caffe-style file reorders BGR to RGB inside its graph: colours differ
            var weights = PyTorchFixture.Floats(Path.Combine(dir, "conv1.f32"));   // (64, 3, 11, 11)
            const int plane = 121;
            for (var i = 0; i < 64; i++)
            {
                var kernel = weights.AsSpan(i * 3 * plane, 3 * plane).ToArray();
                float min = kernel.Min(), range = kernel.Max() - min;
                for (var y = 0; y < 11; y += 5)
                    for (var x = 0; x < 11; x += 5)
                    {
                        var got = picture[1 + i % perRow * tile + 1 + x * px + 1, 1 + i / perRow * tile + 1 + y * px + 1];
                        byte Want(int c) => (byte)Math.Clamp(255 * (kernel[c * plane + y * 11 + x] - min) / range, 0, 255);
                        Assert.True((Want(0), Want(1), Want(2)) == (got.R, got.G, got.B), $"kernel {i} at ({x}, {y}): drawn {got}");
                    }
            }
        }
    }

    [Fact]
    public async Task ModelZooStyleFileServesPyTorchsTop5ForAPictureThroughTheShippedProfile()
    {
        // models/profiles/bvlcalexnet.profile.json as shipped, found beside the model: BGR 0..255 minus Caffe's means,
        // warp to 256x256, central 224; a fixed batch of 1; softmax already applied; ImageNet's 1000 labels.
        var model = Path.Combine(exports.Caffe, "alexnet.onnx");
        var shipped = ShippedProfile("bvlcalexnet.profile.json");
        File.Copy(shipped, Path.Combine(exports.Caffe, "alexnet.profile.json"), overwrite: true);
        File.Copy(Path.Combine(Path.GetDirectoryName(shipped)!, "imagenet1k-synsets.txt"), Path.Combine(exports.Caffe, "imagenet1k-synsets.txt"), true);
        await using var factory = new ApiFactory(model, _dir.File("gallery.db"),
            new Dictionary<string, string?> { ["Inference:MaxBatchDelayMs"] = "50", ["Cache:Enabled"] = "false" });
        var client = await factory.ReadyClientAsync();
        var picture = File.ReadAllBytes(exports.Picture);

        // Two images in one request share a batch; the file takes one row per run. PIL and ImageSharp resample the
        // 320x240 picture with the same bilinear filter but may round a pixel differently: hence 2e-3, not 1e-4.
        var answer = await (await client.PostAsync("/api/classify?k=5", Http.Form(picture, picture))).JsonAsync<ClassifyResponse>();
        Assert.Equal(2, answer.Results.Length);
        var labels = LabelSet.Load(Path.Combine(exports.Caffe, "imagenet1k-synsets.txt"));
        foreach (var r in answer.Results) AssertTop5(exports.Caffe, r, labels.Names, 2e-3f);
        Assert.Equal(labels.Synsets![answer.Results[0].Top[0].Index], answer.Results[0].Top[0].Wnid);
        var served = await client.GetFromJsonAsync<JsonElement>("/api/model");
        Assert.Equal("bgr", served.GetProperty("profile").GetProperty("channelOrder").GetString());
        Assert.Equal(256, served.GetProperty("resizeSize").GetInt32());
    }

    [Fact]
    public void ShippedProfilesAreValidAndTheirLabelsAreImageNets()
    {
        foreach (var name in new[] { "bvlcalexnet.profile.json", "torchvision-alexnet.profile.json" })
        {
            var path = ShippedProfile(name);
            var profile = ModelProfile.Load(path);
            Assert.Equal(224, profile.InputSize);
            Assert.Equal(256, profile.EffectiveResizeSize);
            var labels = LabelSet.Load(Path.Combine(Path.GetDirectoryName(path)!, profile.Labels));
            Assert.Equal(1000, labels.Count);
            Assert.Equal(("n01440764", "tench"), (labels.Synsets![0], labels.Names[0]));
        }
    }

    /// <summary>A tiny third-party classifier: input "pixels" (N, 3, 8, 8); "scores" and "means" are both the
    /// per-channel means of what the model receives, so the answer shows exactly what preprocessing delivered.</summary>
    internal static string TinyModel(string path, bool softmax = false)
    {
        var b = new OnnxModelBuilder();
        b.FloatInput("pixels", "N", 3, 8, 8).FloatOutput("scores", "N", 3).FloatOutput("means", "N", 3)
            .Node("GlobalAveragePool", ["pixels"], ["pooled"])
            .Node("Flatten", ["pooled"], [softmax ? "flat" : "scores"], ("axis", 1))
            .Node("Flatten", ["pooled"], ["means"], ("axis", 1));
        if (softmax) b.Node("Softmax", ["flat"], ["scores"], ("axis", 1));
        b.Save(path);
        File.WriteAllLines(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(path)!, "labels.txt"), ["red", "green", "blue"]);
        return path;
    }

    internal static Dictionary<string, object?> TinyProfile() => new()
    {
        ["input"] = "pixels", ["inputSize"] = 8, ["resize"] = "squash", ["channelOrder"] = "bgr", ["pixelRange"] = 1,
        ["mean"] = new[] { 0.4, 0.5, 0.6 }, ["std"] = new[] { 0.2, 0.25, 0.5 }, ["scores"] = "scores", ["scoresAre"] = "logits",
        ["features"] = "means", ["labels"] = "labels.txt",
    };

    static byte[] Solid(byte r, byte g, byte b, int width = 30, int height = 20)
    {
        using var image = new Image<Rgb24>(width, height, new Rgb24(r, g, b));
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    [Fact]
    public async Task DeclaredChannelOrderScaleMeanAndStdReachTheModelAndItsFeaturesFeedTheGallery()
    {
        var model = TinyModel(_dir.File("tiny.onnx"));
        var profile = WriteProfile(_dir.File("tiny.json"), TinyProfile());
        await using var factory = new ApiFactory(model, _dir.File("gallery.db"), new Dictionary<string, string?> { ["Inference:ProfilePath"] = profile });
        var client = await factory.ReadyClientAsync();

        var features = await (await client.PostAsync("/api/features", Http.Raw(Solid(200, 100, 50)))).JsonAsync<FeaturesResponse>();
        // BGR order, then x / 255 (pixelRange 1), minus the mean, over the std, per channel of the model's order.
        double[] expected = [(50 / 255.0 - 0.4) / 0.2, (100 / 255.0 - 0.5) / 0.25, (200 / 255.0 - 0.6) / 0.5];
        Assert.Equal(3, features.Dim);
        for (var c = 0; c < 3; c++) Assert.Equal(expected[c], features.Results.Single().Features[c], 5);

        // Logits declared: the service applies softmax.
        var classes = await (await client.PostAsync("/api/classify?k=3", Http.Raw(Solid(200, 100, 50)))).JsonAsync<ClassifyResponse>();
        var soft = expected.Select(Math.Exp).ToArray();
        foreach (var s in classes.Results.Single().Top)
            Assert.Equal(soft[s.Index] / soft.Sum(), s.Probability, 5);
        Assert.Equal("blue", classes.Results.Single().Top[0].Label);   // channel 0 of a BGR model is blue, the largest here

        // The declared feature output is the gallery's vector.
        var red = Solid(250, 10, 10);
        var blue = Solid(10, 10, 250);
        using var add = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Form(red, blue) }.WithKey());
        Assert.Equal(HttpStatusCode.Created, add.StatusCode);
        var ids = (await add.JsonAsync<GalleryAddResponse>()).Items.Select(i => i.Id).ToArray();
        var search = await (await client.PostAsync("/api/gallery/search?k=2", Http.Raw(Solid(240, 20, 20)))).JsonAsync<SearchResponse>();
        Assert.Equal(ids, search.Results.Single().Neighbours.Select(n => n.Id));
    }

    [Fact]
    public async Task SquashKeepsTheWholeImageWhereCropWouldCutItsSides()
    {
        // Left third red, the rest blue, 90x30: squash keeps the red third; a central crop of the square would not.
        using var image = new Image<Rgb24>(90, 30, new Rgb24(0, 0, 255));
        for (var y = 0; y < 30; y++) for (var x = 0; x < 30; x++) image[x, y] = new Rgb24(255, 0, 0);
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        var model = TinyModel(_dir.File("tiny.onnx"));
        var means = new Dictionary<string, float[]>();
        foreach (var resize in new[] { "squash", "crop" })
        {
            var p = TinyProfile();
            (p["resize"], p["channelOrder"], p["pixelRange"], p["mean"], p["std"]) = (resize, "rgb", 255, new[] { 0, 0, 0 }, new[] { 1, 1, 1 });
            if (resize == "crop") p["resizeSize"] = 8;
            var profile = WriteProfile(_dir.File($"{resize}.json"), p);
            await using var factory = new ApiFactory(model, _dir.File($"{resize}.db"), new Dictionary<string, string?> { ["Inference:ProfilePath"] = profile });
            var client = await factory.ReadyClientAsync();
            means[resize] = (await (await client.PostAsync("/api/features", Http.Raw(ms.ToArray()))).JsonAsync<FeaturesResponse>()).Results.Single().Features;
        }
        Assert.InRange(means["squash"][0], 255 / 3.0 - 12, 255 / 3.0 + 12);   // about a third red (edges blend)
        // The crop keeps source columns 30..60: red only where the bilinear filter reaches over the edge.
        Assert.True(means["crop"][0] < 20, $"The central crop should hold almost no red; its red mean is {means["crop"][0]}.");
    }

    [Fact]
    public async Task AProfileThatDoesNotFitItsFileStopsTheStartNamingBothAndWhatDiffers()
    {
        var logitsModel = TinyModel(_dir.File("tiny.onnx"));
        Directory.CreateDirectory(_dir.File("soft"));
        var softmaxModel = TinyModel(System.IO.Path.Combine(_dir.File("soft"), "tiny-softmax.onnx"), softmax: true);
        var cases = new (string Name, string Model, Action<Dictionary<string, object?>> Change, string Mentions)[]
        {
            ("input", logitsModel, p => p["input"] = "data_0", "'data_0' is not in the file, whose inputs are [pixels]"),
            ("size", logitsModel, p => p["inputSize"] = 16, "is 8x8 but the profile's inputSize is 16"),
            ("output", logitsModel, p => p["scores"] = "prob", "'prob' is not in the file"),
            ("labels", logitsModel, p => p["labels"] = "four.txt", "4 labels"),
            ("kind", logitsModel, p => p["scoresAre"] = "probabilities", "set 'scoresAre' to logits"),
            ("softmaxed", softmaxModel, p => p["scoresAre"] = "logits", "already softmaxed"),
            ("typo", logitsModel, p => p["chanelOrder"] = "bgr", "chanelOrder"),
            ("std", logitsModel, p => p["std"] = new[] { 1, 0, 1 }, "'std' needs three positive numbers"),
        };
        File.WriteAllLines(_dir.File("four.txt"), ["a", "b", "c", "d"]);
        foreach (var (name, model, change, mentions) in cases)
        {
            var p = TinyProfile();
            change(p);
            var profile = WriteProfile(_dir.File($"{name}.json"), p);
            await using var factory = new ApiFactory(model, _dir.File($"{name}.db"), new Dictionary<string, string?> { ["Inference:ProfilePath"] = profile });
            var e = Assert.ThrowsAny<Exception>(() => factory.CreateClient());
            var messages = ServiceTests.Messages(e);
            Assert.Contains(profile, messages);
            Assert.Contains(mentions, messages);
        }
    }

    public void Dispose() => _dir.Dispose();
}
