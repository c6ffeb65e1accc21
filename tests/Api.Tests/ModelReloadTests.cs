using System.Collections.Concurrent;
using AlexNet.Model.Onnx;
using Microsoft.Data.Sqlite;

namespace AlexNet.Api.Tests;

/// <summary>POST /api/model/reload: the configured file only, refused files leave the old model serving, a good one
/// replaces it with no failed request in flight and the gallery re-embedded.</summary>
[Collection(ApiCollection.Name)]
public sealed class ModelReloadTests(ModelFixture models, Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    const float ProbabilityTolerance = 1e-5f;
    const float SameImageDistance = 1e-3f;

    readonly TempDir _dir = new();
    string Serving => _dir.File("serving.onnx");
    string Database => _dir.File("gallery.db");

    ApiFactory Factory(IDictionary<string, string?>? settings = null)
    {
        File.Copy(models.ModelA, Serving, overwrite: true);
        return new ApiFactory(Serving, Database, settings);
    }

    /// <summary>As a deployment should: write beside, then rename over the configured path.</summary>
    void Deploy(string source)
    {
        var temp = _dir.File($"incoming-{Guid.NewGuid():N}.onnx");
        File.Copy(source, temp);
        File.Move(temp, Serving, overwrite: true);
    }

    static async Task<HttpResponseMessage> ReloadAsync(HttpClient client, string? key = ApiFactory.Key) =>
        await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/model/reload").WithKey(key));

    static async Task<string> FingerprintAsync(HttpClient client) =>
        (await (await client.GetAsync("/api/model")).JsonAsync<ModelResponse>()).Fingerprint;

    static async Task<ProblemDetails> ProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        return (await response.Content.ReadFromJsonAsync<ProblemDetails>())!;
    }

    [Fact]
    public async Task ReloadNeedsTheApiKeyAndTakesNoPath()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        Deploy(models.ModelB);

        using var missing = await ReloadAsync(client, key: null);
        await ProblemAsync(missing, HttpStatusCode.Unauthorized);
        using var wrong = await ReloadAsync(client, key: "not-the-key");
        await ProblemAsync(wrong, HttpStatusCode.Unauthorized);
        // A path in the query or body is not read: the configured file (now B) is what loads, not model A's path.
        using var named = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"/api/model/reload?path={Uri.EscapeDataString(models.ModelA)}")
        {
            Content = JsonContent.Create(new { path = models.ModelA, url = "http://127.0.0.1:1/x.onnx" }),
        }.WithKey());
        var reloaded = await named.JsonAsync<ReloadResponse>();

        Assert.True(reloaded.Changed);
        Assert.Equal(OnnxClassifier.Fingerprint(models.ModelB), reloaded.Fingerprint);
        Assert.Equal("serving.onnx", reloaded.File);
        Assert.Equal(OnnxClassifier.Fingerprint(models.ModelB), await FingerprintAsync(client));
    }

    [Fact]
    public async Task ReloadOfTheSameFileChangesNothing()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        var reloaded = await (await ReloadAsync(client)).JsonAsync<ReloadResponse>();
        Assert.False(reloaded.Changed);
        Assert.Equal(OnnxClassifier.Fingerprint(models.ModelA), reloaded.Fingerprint);
    }

    [Fact]
    public async Task CorruptMissingOrHalfWrittenFileLeavesTheOldModelServingWith422()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        var a = OnnxClassifier.Fingerprint(models.ModelA);
        var modelB = await File.ReadAllBytesAsync(models.ModelB);

        File.WriteAllBytes(Serving, [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 7))]);
        var corrupt = await ProblemAsync(await ReloadAsync(client), HttpStatusCode.UnprocessableEntity);
        File.WriteAllBytes(Serving, modelB[..(modelB.Length / 2)]);
        var halfWritten = await ProblemAsync(await ReloadAsync(client), HttpStatusCode.UnprocessableEntity);
        File.Delete(Serving);
        var missing = await ProblemAsync(await ReloadAsync(client), HttpStatusCode.UnprocessableEntity);

        foreach (var p in new[] { corrupt, halfWritten })
        {
            Assert.Contains("ONNX Runtime cannot load", p.Detail);
            Assert.Contains("current model keeps serving", p.Detail);
        }
        Assert.Contains("no file at Inference:ModelPath", missing.Detail);
        foreach (var p in new[] { corrupt, halfWritten, missing })
        {
            Assert.Contains("serving.onnx", p.Detail);
            Assert.DoesNotContain(_dir.Path, p.Detail);   // the file's name, not the server's folders
        }
        Assert.Equal(a, await FingerprintAsync(client));
        using var classify = await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(1)));
        Assert.Equal(HttpStatusCode.OK, classify.StatusCode);
        Assert.Equal(1, await Http.MetricAsync(client, "alexnet_inference_provider{provider=\"CPU\"}"));

        Deploy(models.ModelB);   // the fixed file goes in on the next try
        Assert.True((await (await ReloadAsync(client)).JsonAsync<ReloadResponse>()).Changed);
    }

    [Fact]
    public async Task ModelOfTheWrongShapeLeavesTheOldModelServingWith409()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        var wrongNames = _dir.File("wrong-names.onnx");
        new OnnxModelBuilder().FloatInput("x", "N", 3, 8, 8).FloatOutput("y", "N", 3, 8, 8).Node("Identity", ["x"], ["y"]).Save(wrongNames);
        var wrongLabels = _dir.File("wrong-labels.onnx");
        new OnnxModelBuilder()
            .FloatInput(OnnxContract.Input, "N", 3, 8, 8).FloatOutput(OnnxContract.Probabilities, "N", 3).FloatOutput(OnnxContract.Features, "N", 3)
            .Node("GlobalAveragePool", [OnnxContract.Input], ["pooled"])   // (N, 3, 1, 1)
            .Node("Flatten", ["pooled"], [OnnxContract.Probabilities], ("axis", 1))
            .Node("Flatten", ["pooled"], [OnnxContract.Features], ("axis", 1))
            .Metadata(OnnxContract.Keys.Labels, "[\"a\",\"b\",\"c\",\"d\",\"e\"]")
            .Save(wrongLabels);

        foreach (var (file, reason) in new[] { (wrongNames, "no input named 'image'"), (wrongLabels, "5 labels") })
        {
            Deploy(file);
            var problem = await ProblemAsync(await ReloadAsync(client), HttpStatusCode.Conflict);
            Assert.Contains(reason, problem.Detail);
            Assert.Contains("current model keeps serving", problem.Detail);
            Assert.Equal(OnnxClassifier.Fingerprint(models.ModelA), await FingerprintAsync(client));
        }
        using var classify = await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(2)));
        Assert.Equal(HttpStatusCode.OK, classify.StatusCode);
    }

    [Fact]
    public async Task NewModelReplacesTheOldWithNoFailedRequestInFlightAndTheGalleryReembedded()
    {
        await using var factory = Factory(new Dictionary<string, string?> { ["Cache:Enabled"] = "false", ["Inference:MaxBatchSize"] = "4" });
        var client = await factory.ReadyClientAsync();
        var (a, b) = (OnnxClassifier.Fingerprint(models.ModelA), OnnxClassifier.Fingerprint(models.ModelB));
        byte[][] images = [.. Enumerable.Range(100, 4).Select(s => TestImages.Png(s))];
        using var referenceA = new Reference(models.ModelA);
        using var referenceB = new Reference(models.ModelB);
        var expected = new Dictionary<string, float[][]>
        {
            [a] = [.. images.Select(i => referenceA.Run(referenceA.Prepare(i), referenceA.Center).Probabilities)],
            [b] = [.. images.Select(i => referenceB.Run(referenceB.Prepare(i), referenceB.Center).Probabilities)],
        };
        using (var seed = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Form(images[0], images[1]) }.WithKey()))
            Assert.Equal(HttpStatusCode.Created, seed.StatusCode);

        using var stop = new CancellationTokenSource();
        var failures = new ConcurrentQueue<string>();
        var answeredBy = new ConcurrentDictionary<string, int>();
        var added = new ConcurrentQueue<(long Id, int Image)>();
        async Task Hammer(int worker)
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                var i = (worker + n) % images.Length;
                if (worker == 0)
                {
                    using var search = await client.PostAsync("/api/gallery/search?k=1", Http.Raw(images[i]));
                    if (!search.IsSuccessStatusCode) failures.Enqueue($"search {(int)search.StatusCode}: {await search.Content.ReadAsStringAsync()}");
                    continue;
                }
                if (worker == 1)
                {
                    if (added.Count >= 40)
                    {
                        await Task.Delay(20);
                        continue;
                    }
                    using var add = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Raw(images[i]) }.WithKey());
                    if (!add.IsSuccessStatusCode) failures.Enqueue($"add {(int)add.StatusCode}: {await add.Content.ReadAsStringAsync()}");
                    else added.Enqueue(((await add.Content.ReadFromJsonAsync<GalleryAddResponse>())!.Items[0].Id, i));
                    continue;
                }
                using var response = await client.PostAsync("/api/classify?k=10", Http.Raw(images[i]));
                if (!response.IsSuccessStatusCode)
                {
                    failures.Enqueue($"classify {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
                    continue;
                }
                var answer = (await response.Content.ReadFromJsonAsync<ClassifyResponse>())!;
                answeredBy.AddOrUpdate(answer.Model, 1, (_, c) => c + 1);
                // One model from decoding to answer: the probabilities are that model's, never a mixture.
                var want = expected[answer.Model][i];
                foreach (var s in answer.Results[0].Top)
                    if (Math.Abs(want[s.Index] - s.Probability) > ProbabilityTolerance)
                        failures.Enqueue($"image {i} answered as {answer.Model[..15]} but class {s.Index} is {s.Probability}, expected {want[s.Index]}");
            }
        }
        var hammers = Enumerable.Range(0, 5).Select(w => Task.Run(() => Hammer(w))).ToArray();

        await Task.Delay(300);
        foreach (var model in new[] { models.ModelB, models.ModelA, models.ModelB })
        {
            Deploy(model);
            var reloaded = await (await ReloadAsync(client)).JsonAsync<ReloadResponse>();
            Assert.True(reloaded.Changed);
            await Task.Delay(300);
        }
        await stop.CancelAsync();
        await Task.WhenAll(hammers);

        output.WriteLine($"classify answers by model: {string.Join(", ", answeredBy.Select(p => $"{p.Key[..15]}: {p.Value}"))}; {added.Count} gallery adds");
        Assert.True(failures.IsEmpty, string.Join("\n", failures.Take(10)));
        Assert.True(answeredBy.GetValueOrDefault(a) > 0 && answeredBy.GetValueOrDefault(b) > 0, $"answers: {string.Join(", ", answeredBy)}");
        Assert.Equal(b, await FingerprintAsync(client));

        // Every gallery image, the ones added during the swaps included, is found at distance 0 by model B's query.
        Assert.NotEmpty(added);
        foreach (var (id, i) in added.Take(8))
        {
            var hits = (await (await client.PostAsync("/api/gallery/search?k=100", Http.Raw(images[i]))).JsonAsync<SearchResponse>()).Results[0].Neighbours;
            var hit = Assert.Single(hits, h => h.Id == id);
            Assert.InRange(hit.Distance, 0f, SameImageDistance);
        }
        await using var db = new SqliteConnection($"Data Source={Database};Mode=ReadOnly;Pooling=False");
        await db.OpenAsync();
        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT group_concat(DISTINCT model) FROM images";
        Assert.Equal(b, (string?)await cmd.ExecuteScalarAsync());
        var list = await (await client.GetAsync("/api/gallery?limit=1000")).JsonAsync<GalleryListResponse>();
        Assert.Equal(2 + added.Count, list.Total);
    }

    [Fact]
    public async Task AThirdPartyFileWithItsProfileBesideItReplacesTheModelAndTheGalleryWaitsForAModelWithFeatures()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        var images = new[] { TestImages.Png(31), TestImages.Png(32) };
        using (var add = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Form(images) }.WithKey()))
            Assert.Equal(HttpStatusCode.Created, add.StatusCode);

        // A classifier without a feature output, its profile as serving.profile.json: it serves, the gallery waits.
        var tiny = ThirdPartyModelTests.TinyModel(_dir.File("tiny.onnx"));
        var profile = ThirdPartyModelTests.TinyProfile();
        profile.Remove("features");
        ThirdPartyModelTests.WriteProfile(ModelProfile.SidecarPath(Serving), profile);
        Deploy(tiny);
        using (var reload = await ReloadAsync(client)) Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
        var served = await (await client.GetAsync("/api/model")).JsonAsync<ModelResponse>();
        Assert.Equal(("pixels", 0, 3), (served.Profile?.Input, served.FeatureDim, served.Classes));
        var top = (await (await client.PostAsync("/api/classify?k=3", Http.Raw(images[0]))).JsonAsync<ClassifyResponse>()).Results[0].Top;
        Assert.Equal(["blue", "green", "red"], top.Select(t => t.Label).Order());
        using (var search = await client.PostAsync("/api/gallery/search?k=1", Http.Raw(images[0])))
            await ProblemAsync(search, HttpStatusCode.Conflict);
        Assert.Equal(2, (await client.GetFromJsonAsync<GalleryListResponse>("/api/gallery"))!.Total);   // kept, listed

        // Back to our own model (no profile beside it any more): the same rows are searchable again.
        File.Delete(ModelProfile.SidecarPath(Serving));
        Deploy(models.ModelA);
        using (var reload = await ReloadAsync(client)) Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
        Assert.Null((await (await client.GetAsync("/api/model")).JsonAsync<ModelResponse>()).Profile);
        var hits = (await (await client.PostAsync("/api/gallery/search?k=2", Http.Raw(images[1]))).JsonAsync<SearchResponse>()).Results[0].Neighbours;
        Assert.Equal(2, hits.Length);
        Assert.True(hits[0].Distance < SameImageDistance, $"The image itself should be nearest; distance {hits[0].Distance}.");
    }

    public void Dispose() => _dir.Dispose();
}
