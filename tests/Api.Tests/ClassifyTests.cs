namespace AlexNet.Api.Tests;

[Collection(ApiCollection.Name)]
public sealed class ClassifyTests(ModelFixture models) : IDisposable
{
    // Named tolerances: batch composition may change the last bits of a float32 result.
    const float ProbabilityTolerance = 1e-5f;
    const double FeatureRelativeTolerance = 1e-5;

    readonly TempDir _dir = new();

    ApiFactory Factory(IDictionary<string, string?>? settings = null) => new(models.ModelA, _dir.File("gallery.db"), settings);

    static float[] All(ImageClassification r) =>
        [.. Enumerable.Range(0, TestModel.Labels.Length).Select(c => r.Top.Single(s => s.Index == c).Probability)];

    [Fact]
    public async Task TopKComesBackSortedWithLabelsAndWordNetIds()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();

        var top5 = await (await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(1)))).JsonAsync<ClassifyResponse>();
        var all = await (await client.PostAsync("/api/classify?k=10", Http.Raw(TestImages.Png(1)))).JsonAsync<ClassifyResponse>();

        Assert.Equal(5, top5.Results.Single().Top.Length);
        var top = all.Results.Single().Top;
        Assert.Equal(10, top.Length);
        Assert.Equal(Enumerable.Range(0, 10), top.Select(s => s.Index).Order());
        Assert.Equal(top.Select(s => s.Probability).OrderDescending(), top.Select(s => s.Probability));
        Assert.Equal(top.Take(5), top5.Results.Single().Top);
        Assert.Equal(1.0, top.Sum(s => (double)s.Probability), 4);
        Assert.True(top[0].Probability > 0.2f, $"The test model should be confident; top-1 is {top[0].Probability}.");
        foreach (var s in top)
        {
            Assert.Equal(TestModel.Labels[s.Index], s.Label);
            Assert.Equal(TestModel.Synsets[s.Index] is "" ? null : TestModel.Synsets[s.Index], s.Wnid);
        }
    }

    [Fact]
    public async Task SameImageGetsSameAnswerAsTheModelRunDirectly()
    {
        await using var factory = Factory(new Dictionary<string, string?> { ["Cache:Enabled"] = "false" });
        var client = await factory.ReadyClientAsync();
        using var reference = new Reference(models.ModelA);
        var bytes = TestImages.Png(2);

        var first = await (await client.PostAsync("/api/classify?k=10", Http.Raw(bytes))).JsonAsync<ClassifyResponse>();
        var second = await (await client.PostAsync("/api/classify?k=10", Http.Form(bytes))).JsonAsync<ClassifyResponse>();
        var (expected, _) = reference.Run(reference.Prepare(bytes), reference.Center);

        Assert.False(second.Results[0].Cached);
        Assert.Equal(All(first.Results[0]), All(second.Results[0]));
        var got = All(first.Results[0]);
        for (var c = 0; c < expected.Length; c++) Assert.Equal(expected[c], got[c], ProbabilityTolerance);
    }

    [Fact]
    public async Task TenCropAnswerIsTheMeanOfTheTenCrops()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        using var reference = new Reference(models.ModelA);
        var bytes = TestImages.Png(3, 120, 80);

        var ten = await (await client.PostAsync("/api/classify?k=10&tenCrop=true", Http.Raw(bytes))).JsonAsync<ClassifyResponse>();
        var center = await (await client.PostAsync("/api/classify?k=10", Http.Raw(bytes))).JsonAsync<ClassifyResponse>();
        var prepared = reference.Prepare(bytes);
        var mean = new double[10];
        foreach (var crop in reference.TenCrops)
        {
            var (p, _) = reference.Run(prepared, crop);
            for (var c = 0; c < 10; c++) mean[c] += p[c] / 10.0;
        }

        Assert.True(ten.TenCrop);
        var got = All(ten.Results[0]);
        for (var c = 0; c < 10; c++) Assert.Equal(mean[c], got[c], ProbabilityTolerance);
        // The crops really differ: the mean is not the central crop's answer.
        Assert.True(All(center.Results[0]).Zip(got).Max(p => Math.Abs(p.First - p.Second)) > 100 * ProbabilityTolerance);
    }

    [Fact]
    public async Task SeveralImagesInOneRequestGetTheirOwnAnswersInOrder()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        byte[][] images = [TestImages.Png(4), TestImages.Jpeg(5), TestImages.Gif(6), TestImages.Webp(7)];

        var together = await (await client.PostAsync("/api/classify?k=10", Http.Form(images))).JsonAsync<ClassifyResponse>();

        Assert.Equal([0, 1, 2, 3], together.Results.Select(r => r.Image));
        for (var i = 0; i < images.Length; i++)
        {
            var alone = await (await client.PostAsync("/api/classify?k=10", Http.Raw(images[i], "image/webp"))).JsonAsync<ClassifyResponse>();
            var (a, b) = (All(alone.Results[0]), All(together.Results[i]));
            for (var c = 0; c < 10; c++) Assert.Equal(a[c], b[c], ProbabilityTolerance);
        }
        Assert.NotEqual(All(together.Results[0]), All(together.Results[1]));
    }

    [Fact]
    public async Task FeaturesAreTheFc7VectorOfTheCentralCrop()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        using var reference = new Reference(models.ModelA);
        var bytes = TestImages.Png(8);

        var response = await (await client.PostAsync("/api/features", Http.Raw(bytes))).JsonAsync<FeaturesResponse>();
        var (_, expected) = reference.Run(reference.Prepare(bytes), reference.Center);

        var got = response.Results.Single().Features;
        Assert.Equal(TestModel.Spec.FeatureDim, response.Dim);
        Assert.Equal(expected.Length, got.Length);
        Assert.All(got, v => Assert.True(v >= 0));   // post-ReLU
        Assert.True(AlexNet.Model.Maths.RelativeL2(got, expected) < FeatureRelativeTolerance);
    }

    [Fact]
    public async Task SecondIdenticalRequestIsACacheHit()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        var bytes = TestImages.Png(9);
        var hitsBefore = await Http.MetricAsync(client, "alexnet_cache_requests_total{result=\"hit\"}");

        using var first = await client.PostAsync("/api/classify", Http.Raw(bytes));
        using var second = await client.PostAsync("/api/classify", Http.Raw(bytes));
        using var tenCrop = await client.PostAsync("/api/classify?tenCrop=true", Http.Raw(bytes));   // other options, other entry

        Assert.Equal("miss", first.Headers.GetValues("X-Cache").Single());
        Assert.Equal("hit", second.Headers.GetValues("X-Cache").Single());
        Assert.Equal("miss", tenCrop.Headers.GetValues("X-Cache").Single());
        var (a, b) = (await first.JsonAsync<ClassifyResponse>(), await second.JsonAsync<ClassifyResponse>());
        Assert.True(b.Results[0].Cached);
        Assert.Equal(a.Results[0].Top, b.Results[0].Top);
        Assert.Equal(hitsBefore + 1, await Http.MetricAsync(client, "alexnet_cache_requests_total{result=\"hit\"}"));
    }

    [Fact]
    public async Task ConcurrentRequestsGetTheSameAnswersAsSerialOnes()
    {
        // No cache, and a batch window, so that concurrent crops really share ONNX Runtime calls.
        await using var factory = Factory(new Dictionary<string, string?>
        {
            ["Cache:Enabled"] = "false",
            ["Inference:MaxBatchDelayMs"] = "50",
            ["Inference:MaxBatchSize"] = "8",
        });
        var client = await factory.ReadyClientAsync();
        var images = Enumerable.Range(100, 12).Select(s => TestImages.Png(s)).ToArray();
        var serial = new List<float[]>();
        foreach (var image in images)
            serial.Add(All((await (await client.PostAsync("/api/classify?k=10", Http.Raw(image))).JsonAsync<ClassifyResponse>()).Results[0]));
        var batchesBefore = await Http.MetricAsync(client, "alexnet_inference_batch_size_count");

        var concurrent = await Task.WhenAll(images.Select(async image =>
            All((await (await client.PostAsync("/api/classify?k=10", Http.Raw(image))).JsonAsync<ClassifyResponse>()).Results[0])));

        for (var i = 0; i < images.Length; i++)
            for (var c = 0; c < 10; c++) Assert.Equal(serial[i][c], concurrent[i][c], ProbabilityTolerance);
        var batches = await Http.MetricAsync(client, "alexnet_inference_batch_size_count") - batchesBefore;
        Assert.True(batches < images.Length, $"{images.Length} concurrent requests ran in {batches} batches; expected some sharing.");
    }

    [Fact]
    public async Task AcceptsJpegGifAndWebpAsRawBodies()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        foreach (var (bytes, type) in new[] { (TestImages.Jpeg(10), "image/jpeg"), (TestImages.Gif(11), "image/gif"), (TestImages.Webp(12), "image/webp") })
        {
            using var response = await client.PostAsync("/api/classify", Http.Raw(bytes, type));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    public void Dispose() => _dir.Dispose();
}
