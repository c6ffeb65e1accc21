namespace AlexNet.Api.Tests;

/// <summary>
/// Several models by name (issue 18, item 3): the default model (Inference:ModelPath) and one from the "Models" list
/// served at once, each answering with its own weights through /api/classify?model=, /v2 and GET /api/models, and
/// each reloaded on its own (POST /api/models/{name}/reload with the key) while the other keeps its fingerprint.
/// </summary>
public sealed class NamedModelsTests : IDisposable
{
    readonly TempDir _dir = new();

    [Fact]
    public async Task TwoModelsAnswerIndependentlyAndReloadIndependently()
    {
        var (a, b) = (_dir.File("first.onnx"), _dir.File("second.onnx"));
        TestModel.Write(a, seed: 1);
        TestModel.Write(b, seed: 2);
        await using var factory = new ApiFactory(a, _dir.File("gallery.db"), new Dictionary<string, string?>
        {
            ["Models:0:Name"] = "other",
            ["Models:0:Path"] = b,
            ["Models:0:Version"] = "7",
            ["Cache:Enabled"] = "false",
        });
        var client = await factory.ReadyClientAsync();
        var image = TestImages.Png(5, 80, 64);

        var models = await (await client.GetAsync("/api/models")).JsonAsync<ModelsResponse>();
        Assert.Equal("first", models.Default);
        Assert.Equal(["first", "other"], models.Models.Select(m => m.Name));
        Assert.All(models.Models, m => Assert.True(m.Ready, m.Name));
        Assert.Equal([true, false], models.Models.Select(m => m.Gallery));
        var (fpA, fpB) = (models.Models[0].Fingerprint, models.Models[1].Fingerprint);
        Assert.NotEqual(fpA, fpB);

        async Task<ClassifyResponse> Classify(string? model) =>
            await (await client.PostAsync($"/api/classify?k=10{(model is null ? "" : "&model=" + model)}", Http.Raw(image))).JsonAsync<ClassifyResponse>();
        var byDefault = await Classify(null);
        var first = await Classify("first");
        var other = await Classify("other");
        Assert.Equal(fpA, byDefault.Model);
        Assert.Equal(fpA, first.Model);
        Assert.Equal(fpB, other.Model);
        Assert.Equal(byDefault.Results[0].Top, first.Results[0].Top);
        Assert.NotEqual(first.Results[0].Top.Select(c => c.Probability), other.Results[0].Top.Select(c => c.Probability));
        using (var unknown = await client.PostAsync("/api/classify?model=nope", Http.Raw(image)))
        {
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            Assert.Contains("'other'", await unknown.Content.ReadAsStringAsync());
        }

        // The protocol sees both, with their versions; the named one answers as /api/classify?model= does.
        using (var metadata = JsonDocument.Parse(await client.GetStringAsync("/v2/models/other/versions/7")))
            Assert.Equal("other", metadata.RootElement.GetProperty("name").GetString());
        using (var response = await client.PostAsJsonAsync("/v2/models/other/infer", new
        {
            inputs = new[] { new { name = "image_bytes", datatype = "BYTES", shape = new[] { 1 }, data = new[] { Convert.ToBase64String(image) } } },
            outputs = new[] { new { name = "probabilities" } },
        }))
        {
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Assert.True(response.IsSuccessStatusCode, body.RootElement.ToString());
            Assert.Equal("7", body.RootElement.GetProperty("model_version").GetString());
            var data = body.RootElement.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(x => x.GetSingle()).ToArray();
            foreach (var c in other.Results[0].Top) Assert.True(Math.Abs(data[c.Index] - c.Probability) <= 1e-6f, $"class {c.Index}");
        }

        // Reload the named model only: its fingerprint changes, the default's does not.
        TestModel.Write(b, seed: 3);
        using (var keyless = await client.PostAsync("/api/models/other/reload", null)) Assert.Equal(HttpStatusCode.Unauthorized, keyless.StatusCode);
        var reloaded = await (await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/models/other/reload").WithKey())).JsonAsync<ReloadResponse>();
        Assert.True(reloaded.Changed);
        Assert.Equal(fpB, reloaded.Previous);
        var fpB2 = reloaded.Fingerprint;
        Assert.NotEqual(fpB, fpB2);
        Assert.Equal(fpB2, (await Classify("other")).Model);
        Assert.Equal(fpA, (await Classify(null)).Model);

        // Then the default only: the named one keeps its new file.
        TestModel.Write(a, seed: 4);
        reloaded = await (await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/models/first/reload").WithKey())).JsonAsync<ReloadResponse>();
        Assert.True(reloaded.Changed);
        Assert.NotEqual(fpA, reloaded.Fingerprint);
        models = await (await client.GetAsync("/api/models")).JsonAsync<ModelsResponse>();
        Assert.Equal([reloaded.Fingerprint, fpB2], models.Models.Select(m => m.Fingerprint));
        Assert.Equal(reloaded.Fingerprint, (await Classify(null)).Model);
        Assert.Equal(fpB2, (await Classify("other")).Model);

        using var missing = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/models/nope/reload").WithKey());
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task ANamedModelWhoseNameIsTakenStopsTheStartWithTheKey()
    {
        var a = _dir.File("first.onnx");
        TestModel.Write(a, seed: 1);
        await using var factory = new ApiFactory(a, _dir.File("gallery.db"), new Dictionary<string, string?>
        {
            ["Models:0:Name"] = "first",
            ["Models:0:Path"] = a,
        });
        var e = await Assert.ThrowsAnyAsync<Exception>(factory.ReadyClientAsync);
        Assert.Contains("Models: the name 'first' is taken twice", e.ToString());
    }

    [Fact]
    public async Task ANamedModelWithoutItsFileStopsTheStartNamingIt()
    {
        var a = _dir.File("first.onnx");
        TestModel.Write(a, seed: 1);
        await using var factory = new ApiFactory(a, _dir.File("gallery.db"), new Dictionary<string, string?>
        {
            ["Models:0:Name"] = "other",
            ["Models:0:Path"] = _dir.File("missing.onnx"),
        });
        var e = await Assert.ThrowsAnyAsync<Exception>(factory.ReadyClientAsync);
        Assert.Contains("Model 'other' (the Models list): no file at", e.ToString());
    }

    public void Dispose() => _dir.Dispose();
}
