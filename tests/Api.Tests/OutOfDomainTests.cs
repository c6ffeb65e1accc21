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

        // A handful of test images (the first eight): in domain, and mostly classified right.
        var samples = Enumerable.Range(0, 8).Select(FashionMnistSamples.Test).ToArray();
        var inDomain = await (await client.PostAsync("/api/classify", Http.Form([.. samples.Select(s => s.Png)]))).JsonAsync<ClassifyResponse>();
        Assert.All(inDomain.Results, r =>
        {
            Assert.NotNull(r.OodScore);
            Assert.True(r.OutOfDomain == false && r.OodScore <= 1, $"test image {r.Image} scored {r.OodScore}");
        });
        Assert.True(inDomain.Results.Count(r => r.Top[0].Index == samples[r.Image].Label) >= 6);

        // Real photos (sklearn's, bundled with the tests): flagged, whatever garment they look most like.
        foreach (var photo in new[] { "china.jpg", "flower.jpg", "china-gray-progressive.jpg" })
        {
            var answer = await (await client.PostAsync("/api/classify", Http.Raw(FashionMnistSamples.Photo(photo), "image/jpeg"))).JsonAsync<ClassifyResponse>();
            var r = answer.Results.Single();
            Assert.True(r.OutOfDomain == true && r.OodScore > 1, $"{photo} scored {r.OodScore}");
        }

        // 10 crops: the mean of the crops' scores, and the same verdict for a test image.
        var ten = await (await client.PostAsync("/api/classify?tenCrop=true", Http.Raw(samples[0].Png))).JsonAsync<ClassifyResponse>();
        Assert.False(ten.Results[0].OutOfDomain);

        // GET /api/model says how the threshold was set, and leaves the statistics themselves out of the metadata.
        var model = await (await client.GetAsync("/api/model")).JsonAsync<ModelResponse>();
        using var session = new InferenceSession(demo);
        var stored = DomainStatistics.FromJson(session.ModelMetadata.CustomMetadataMap[DomainStatistics.MetadataKey]);
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
