using AlexNet.Model.OutOfDomain;
using Microsoft.ML.OnnxRuntime;

namespace AlexNet.Api.Tests;

/// <summary>
/// The out-of-domain score in /api/classify: the bundled demo model (which carries the statistics) against Fashion-MNIST
/// test images and real photos, and a model without statistics. The flag is the stored threshold's (score 1 = the
/// threshold written at export), not a number chosen here.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class OutOfDomainTests(ModelFixture models) : IDisposable
{
    readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task AModelWithoutStatisticsReportsNoScore()
    {
        await using var factory = new ApiFactory(models.ModelA, _dir.File("gallery.db"));
        var client = await factory.ReadyClientAsync();

        var response = await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(1)));
        var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("results")[0];
        var model = await (await client.GetAsync("/api/model")).JsonAsync<ModelResponse>();

        Assert.Equal(JsonValueKind.Null, json.GetProperty("oodScore").ValueKind);     // present, and null
        Assert.Equal(JsonValueKind.Null, json.GetProperty("outOfDomain").ValueKind);
        Assert.Null(model.OutOfDomain);
    }

    [Fact]
    public async Task OnTheDemoModelTestImagesPassAndPhotosAreFlagged()
    {
        var demo = FashionMnistSamples.DemoModel();
        await using var factory = new ApiFactory(demo, _dir.File("gallery.db"));
        var client = await factory.ReadyClientAsync();

        // The first 32 test images: in domain, and mostly classified right. The flag fires on about (100 - percentile)% of
        // in-domain images (2.5% for the stored 97.5th percentile), so allow twice that share, plus one.
        using var session = new InferenceSession(demo);
        var stored = DomainStatistics.FromJson(session.ModelMetadata.CustomMetadataMap[DomainStatistics.MetadataKey]);
        var samples = Enumerable.Range(0, 32).Select(FashionMnistSamples.Test).ToArray();
        var inDomain = new List<ImageClassification>();
        foreach (var chunk in samples.Chunk(16))
            inDomain.AddRange((await (await client.PostAsync("/api/classify", Http.Form([.. chunk.Select(s => s.Png)]))).JsonAsync<ClassifyResponse>()).Results);
        Assert.All(inDomain, r => Assert.True(r.OodScore is not null && r.OutOfDomain == r.OodScore > 1));
        var flagged = inDomain.Count(r => r.OutOfDomain == true);
        var allowed = (int)Math.Ceiling(samples.Length * 2 * (100 - stored.Percentile) / 100) + 1;
        Assert.True(flagged <= allowed, $"{flagged} of {samples.Length} test images flagged; at most {allowed} expected " +
            $"(scores {string.Join(", ", inDomain.Select(r => r.OodScore))})");
        var right = inDomain.Select((r, i) => r.Top[0].Index == samples[i].Label).Count(x => x);
        Assert.True(right >= 26, $"{right} of 32 right");

        // Real photos (sklearn's, bundled with the tests): flagged, whatever garment they look most like.
        foreach (var photo in new[] { "china.jpg", "flower.jpg", "china-gray-progressive.jpg" })
        {
            var answer = await (await client.PostAsync("/api/classify", Http.Raw(FashionMnistSamples.Photo(photo), "image/jpeg"))).JsonAsync<ClassifyResponse>();
            var r = answer.Results.Single();
            Assert.True(r.OutOfDomain == true && r.OodScore > 1, $"{photo} scored {r.OodScore}");
        }

        // 10 crops: the mean of the crops' scores, and the same verdict for a test image.
        var calm = Array.FindIndex([.. inDomain], r => r.OodScore < 0.5);   // a test image well inside the threshold
        var ten = await (await client.PostAsync("/api/classify?tenCrop=true", Http.Raw(samples[calm].Png))).JsonAsync<ClassifyResponse>();
        Assert.False(ten.Results[0].OutOfDomain);

        // GET /api/model says how the threshold was set, and leaves the statistics themselves out of the metadata.
        var model = await (await client.GetAsync("/api/model")).JsonAsync<ModelResponse>();
        Assert.NotNull(model.OutOfDomain);
        Assert.Equal((stored.Percentile, stored.CalibrationImages), (model.OutOfDomain.Percentile, model.OutOfDomain.CalibrationImages));
        Assert.Contains("fc7", model.OutOfDomain.Layers);
        Assert.DoesNotContain(DomainStatistics.MetadataKey, model.Metadata.Keys);
    }

    [Fact]
    public async Task TheServiceScoresExactlyAsTheStoredStatisticsDo()
    {
        var demo = FashionMnistSamples.DemoModel();
        await using var factory = new ApiFactory(demo, _dir.File("gallery.db"));
        var client = await factory.ReadyClientAsync();
        var photo = FashionMnistSamples.Photo("china.jpg");
        var served = (await (await client.PostAsync("/api/classify", Http.Raw(photo, "image/jpeg"))).JsonAsync<ClassifyResponse>()).Results[0];

        // The same crop through ONNX Runtime directly, scored by the statistics read from the file.
        using var session = new InferenceSession(demo);
        var stats = DomainStatistics.FromJson(session.ModelMetadata.CustomMetadataMap[DomainStatistics.MetadataKey]);
        var spec = JsonSerializer.Deserialize<AlexNetSpec>(session.ModelMetadata.CustomMetadataMap[OnnxContract.Keys.Spec])!;
        var prep = new AlexNet.Model.Imaging.ImagePreprocessor(spec);
        using var image = AlexNet.Model.Imaging.SafeImageDecoder.Default.Decode(photo);
        var crop = prep.CenterCrop(prep.Prepare(image));
        var input = new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(crop, [1, 3, spec.InputSize, spec.InputSize]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxContract.Input, input)], [DomainStatisticsGraph.Output]);
        var expected = stats.Score(results[0].AsTensor<float>().ToArray());

        Assert.Equal(expected, served.OodScore!.Value, expected * 1e-3f);
    }

    [Fact]
    public void AFileWhoseStatisticsDoNotFitItsOutputIsRefusedNamingTheKey()
    {
        // The demo model's statistics in a model that has no ood_stats output: the metadata promises what the graph lacks.
        using var demo = new InferenceSession(FashionMnistSamples.DemoModel());
        var path = _dir.File("broken.onnx");
        var bytes = File.ReadAllBytes(models.ModelA);
        var fragment = new AlexNet.Model.Onnx.OnnxModelBuilder().Metadata(DomainStatistics.MetadataKey,
            demo.ModelMetadata.CustomMetadataMap[DomainStatistics.MetadataKey]);
        File.WriteAllBytes(path, AlexNet.Model.Onnx.OnnxFileEditor.Merge(bytes, fragment, _ => false));
        using var session = new InferenceSession(path);

        var e = Assert.Throws<ModelContractException>(() => ContractCheck.Check(session, path, "sha256:x"));

        Assert.Contains(DomainStatisticsGraph.Output, e.Message);
        Assert.Contains(path, e.Message);
    }
}
