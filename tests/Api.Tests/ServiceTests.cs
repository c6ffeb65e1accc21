using System.Reflection;
using AlexNet.Model.Onnx;
using Microsoft.AspNetCore.Routing;

namespace AlexNet.Api.Tests;

[Collection(ApiCollection.Name)]
public sealed class ServiceTests(ModelFixture models) : IDisposable
{
    readonly TempDir _dir = new();

    ApiFactory Factory(string? model = null, IDictionary<string, string?>? settings = null) =>
        new(model ?? models.ModelA, _dir.File("gallery.db"), settings);

    [Fact]
    public async Task SwaggerDocumentListsEveryEndpointWithItsForms()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        using var doc = JsonDocument.Parse(await client.GetStringAsync("/swagger/v1/swagger.json"));
        var paths = doc.RootElement.GetProperty("paths");

        // Every route the app maps (but Swagger's own) is in the document with its methods.
        var routes = factory.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<Grpc.AspNetCore.Server.GrpcMethodMetadata>() is null)   // gRPC has its .proto, not OpenAPI
            .Select(e => (Path: "/" + e.RoutePattern.RawText!.Trim('/').Replace(":long", ""),
                Methods: e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods ?? ["GET"]))
            .ToList();
        Assert.Contains(routes, r => r.Path == "/metrics");
        Assert.True(routes.Count >= 12, string.Join(", ", routes.Select(r => r.Path)));
        foreach (var (path, methods) in routes)
        {
            Assert.True(paths.TryGetProperty(path, out var item), $"{path} is not in the Swagger document");
            foreach (var method in methods) Assert.True(item.TryGetProperty(method.ToLowerInvariant(), out _), $"{method} {path} is missing");
        }
        string[] expected = ["/api/classify", "/api/features", "/api/gallery", "/api/gallery/{id}", "/api/gallery/{id}/thumbnail",
            "/api/gallery/search", "/api/gallery/{id}/similar", "/api/model", "/health/live", "/health/ready", "/metrics"];
        Assert.All(expected, p => Assert.True(paths.TryGetProperty(p, out _), p));

        var classify = paths.GetProperty("/api/classify").GetProperty("post");
        var form = classify.GetProperty("requestBody").GetProperty("content").GetProperty("multipart/form-data").GetProperty("schema");
        Assert.Equal("binary", form.GetProperty("properties").GetProperty("image").GetProperty("items").GetProperty("format").GetString());
        Assert.True(classify.GetProperty("requestBody").GetProperty("content").TryGetProperty("image/jpeg", out _));
        var responses = classify.GetProperty("responses");
        foreach (var status in new[] { "200", "400", "413", "415", "422", "429", "503" })
            Assert.True(responses.TryGetProperty(status, out _), $"classify does not document {status}");
        Assert.Equal("Ankle boot", responses.GetProperty("200").GetProperty("content").GetProperty("application/json")
            .GetProperty("example").GetProperty("results")[0].GetProperty("top")[0].GetProperty("label").GetString());
        Assert.True(responses.GetProperty("200").GetProperty("headers").TryGetProperty("X-Cache", out _));
        Assert.True(responses.GetProperty("503").GetProperty("headers").TryGetProperty("Retry-After", out _));
        Assert.True(responses.GetProperty("429").GetProperty("headers").TryGetProperty("Retry-After", out _));
        var add = paths.GetProperty("/api/gallery").GetProperty("post");
        Assert.True(add.GetProperty("requestBody").GetProperty("content").GetProperty("multipart/form-data").GetProperty("schema")
            .GetProperty("properties").TryGetProperty("label", out _));
        Assert.True(add.TryGetProperty("security", out _), "gallery writes must declare the API key");
        Assert.True(add.GetProperty("responses").TryGetProperty("401", out _));
        Assert.Contains("k", classify.GetProperty("parameters").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
    }

    [Fact]
    public async Task SwaggerUiLoads()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        using var page = await client.GetAsync("/swagger/index.html");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("swagger-ui", await page.Content.ReadAsStringAsync());
        using var script = await client.GetAsync("/swagger/swagger-ui-bundle.js");
        Assert.Equal(HttpStatusCode.OK, script.StatusCode);
    }

    [Fact]
    public async Task HealthSaysLiveAndReadyWithTheProvider()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();

        var live = await (await client.GetAsync("/health/live")).JsonAsync<LivenessResponse>();
        var ready = await (await client.GetAsync("/health/ready")).JsonAsync<ReadinessResponse>();
        var metrics = await client.GetStringAsync("/metrics");

        Assert.Equal("alive", live.Status);
        Assert.Equal(("ready", "CPU"), (ready.Status, ready.Provider));
        Assert.Equal(Inference.OnnxClassifier.Fingerprint(models.ModelA), ready.Fingerprint);
        Assert.Contains("alexnet_inference_provider{provider=\"CPU\"} 1", metrics);
        Assert.Contains("alexnet_ready 1", metrics);
        Assert.Contains("http_requests_received_total", metrics);
    }

    [Fact]
    public async Task ModelEndpointReadsTheOnnxMetadata()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        var model = await (await client.GetAsync("/api/model")).JsonAsync<ModelResponse>();

        Assert.Equal(("compact", 56, 64, 10, 1024, "CPU"), (model.Preset, model.InputSize, model.ResizeSize, model.Classes, model.FeatureDim, model.Provider));
        Assert.Equal(TestModel.Labels, model.Labels.Select(l => l.Label));
        Assert.Equal("n04370456", model.Labels[0].Wnid);
        Assert.Null(model.Labels[1].Wnid);
        Assert.Equal("test", model.Provenance?.GetProperty("dataset").GetString());
        Assert.Equal("model-a.onnx", model.File);   // the name, not the server's path
    }

    [Fact]
    public async Task MissingModelStopsTheStartNamingThePath()
    {
        var path = _dir.File("no-such-model.onnx");
        await using var factory = Factory(path);
        var e = Assert.ThrowsAny<Exception>(() => factory.CreateClient());
        Assert.Contains(path, Messages(e));
        Assert.Contains("Inference:ModelPath", Messages(e));
    }

    [Fact]
    public async Task MalformedModelStopsTheStartNamingThePath()
    {
        var garbage = _dir.File("garbage.onnx");
        File.WriteAllBytes(garbage, [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 7))]);
        var wrongNames = _dir.File("wrong-names.onnx");
        var b = new OnnxModelBuilder();
        b.FloatInput("x", "N", 3, 8, 8).FloatOutput("y", "N", 3, 8, 8).Node("Identity", ["x"], ["y"]);
        b.Save(wrongNames);

        // Right names, but 5 labels for 3 output columns.
        var wrongLabels = _dir.File("wrong-labels.onnx");
        var c = new OnnxModelBuilder();
        c.FloatInput(OnnxContract.Input, "N", 3, 8, 8).FloatOutput(OnnxContract.Probabilities, "N", 3).FloatOutput(OnnxContract.Features, "N", 3)
            .Node("GlobalAveragePool", [OnnxContract.Input], ["pooled"])                       // (N, 3, 1, 1)
            .Node("Flatten", ["pooled"], [OnnxContract.Probabilities], ("axis", 1))
            .Node("Flatten", ["pooled"], [OnnxContract.Features], ("axis", 1))
            .Metadata(OnnxContract.Keys.Labels, "[\"a\",\"b\",\"c\",\"d\",\"e\"]");
        c.Save(wrongLabels);

        foreach (var (path, mentions) in new[] { (garbage, "ONNX Runtime"), (wrongNames, "no input named 'image'"), (wrongLabels, "5 labels") })
        {
            await using var factory = Factory(path);
            var e = Assert.ThrowsAny<Exception>(() => factory.CreateClient());
            Assert.Contains(path, Messages(e));
            Assert.Contains(mentions, Messages(e));
        }
    }

    [Fact]
    public async Task CudaRequestedWithoutCudaIsNotReadyRatherThanQuietlyOnTheCpu()
    {
        await using var factory = Factory(settings: new Dictionary<string, string?> { ["Inference:Provider"] = "Cuda" });
        var client = factory.CreateClient();
        using var ready = await client.GetAsync("/health/ready");
        if (ready.StatusCode == HttpStatusCode.OK)
        {
            Assert.Equal("CUDA", (await ready.Content.ReadFromJsonAsync<ReadinessResponse>())!.Provider);   // a GPU host
            return;
        }
        Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
        Assert.Equal("application/problem+json", ready.Content.Headers.ContentType?.MediaType);
        var problem = (await ready.Content.ReadFromJsonAsync<ProblemDetails>())!;
        Assert.Contains("CUDA", problem.Detail);
        Assert.Equal("none", problem.Extensions["provider"]?.ToString());
        Assert.NotNull(ready.Headers.RetryAfter);

        using var classify = await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(1)));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, classify.StatusCode);
        Assert.Equal("application/problem+json", classify.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(classify.Headers.RetryAfter);
        Assert.Contains("alexnet_inference_provider{provider=\"CPU\"} 0", await client.GetStringAsync("/metrics"));
        using var live = await client.GetAsync("/health/live");
        Assert.Equal(HttpStatusCode.OK, live.StatusCode);
    }

    [Fact]
    public async Task AutoProviderRunsWhereverItCanAndSaysWhere()
    {
        await using var factory = Factory(settings: new Dictionary<string, string?> { ["Inference:Provider"] = "Auto" });
        var client = await factory.ReadyClientAsync();
        var ready = await (await client.GetAsync("/health/ready")).JsonAsync<ReadinessResponse>();
        Assert.Contains(ready.Provider, new[] { "CPU", "CUDA" });
        using var classify = await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(1)));
        Assert.Equal(HttpStatusCode.OK, classify.StatusCode);
    }

    [Fact]
    public void ApiDoesNotReferenceTorchSharp()
    {
        var api = typeof(Program).Assembly;
        var seen = new HashSet<string>();
        var pending = new Stack<Assembly>([api]);
        while (pending.TryPop(out var assembly))
            foreach (var name in assembly.GetReferencedAssemblies())
            {
                Assert.False(name.Name!.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase), $"{assembly.GetName().Name} references {name.Name}");
                if (name.Name.StartsWith("AlexNet", StringComparison.Ordinal) && seen.Add(name.Name)) pending.Push(Assembly.Load(name));
            }
        Assert.Contains("AlexNet.Model", seen);
        Assert.DoesNotContain("AlexNet.Training", seen);
        var deps = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "AlexNet.Api.deps.json"));
        Assert.DoesNotContain("TorchSharp", deps, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("libtorch", deps, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Microsoft.ML.OnnxRuntime", deps);
    }

    [Fact]
    public async Task KestrelRefusesBodiesOverTheLimitWithProblem413()
    {
        await using var factory = Factory(settings: new Dictionary<string, string?>
        {
            ["Uploads:MaxImageBytes"] = "50000",
            ["Uploads:MaxRequestBytes"] = "100000",
        });
        factory.UseKestrel(0);
        factory.StartServer();
        var client = factory.CreateClient();
        Assert.StartsWith("http://", client.BaseAddress!.ToString());
        Assert.NotEqual(80, client.BaseAddress.Port);

        // Chunked, so no Content-Length to check first: Kestrel's MaxRequestBodySize or the form limit stops it.
        using var form = Http.Form(new byte[60_000], new byte[60_000]);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/classify") { Content = new ChunkedContent(form) };
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.False(response.Headers.Contains("Server"), "the Server header is off");

        var fresh = factory.CreateClient();
        using var ok = await fresh.PostAsync("/api/classify", Http.Raw(TestImages.Png(1)));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task CancelledRequestIsSkippedByTheBatcher()
    {
        var gate = new HoldingGate();
        await using var factory = new ApiFactory(models.ModelA, _dir.File("gallery.db"), new Dictionary<string, string?> { ["Inference:MaxBatchSize"] = "4" },
            services => services.AddSingleton<Inference.IInferenceGate>(gate));
        var client = await factory.ReadyClientAsync();
        var batcher = factory.Services.GetRequiredService<Inference.InferenceBatcher>();
        using var lease = factory.Services.GetRequiredService<Serving.ServingHost>().Acquire();
        var pre = lease.Model.Preprocessor;
        var image = new AlexNet.Model.Imaging.PreparedImage(new byte[pre.ResizeSize * pre.ResizeSize * 3], pre.ResizeSize);
        var batchesBefore = await Http.MetricAsync(client, "alexnet_inference_batch_size_sum");

        gate.Hold();
        var first = batcher.EnqueueAsync(lease.Generation, image, pre.Center, CancellationToken.None);
        await gate.Entered.WaitAsync(TimeSpan.FromSeconds(10));
        using var cts = new CancellationTokenSource();
        var cancelled = batcher.EnqueueAsync(lease.Generation, image, pre.Center, cts.Token);
        var kept = batcher.EnqueueAsync(lease.Generation, image, pre.Center, CancellationToken.None);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(TimeSpan.FromSeconds(5)));   // at once, not after the model
        gate.Release();
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        await kept.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(batchesBefore + 2, await Http.MetricAsync(client, "alexnet_inference_batch_size_sum"));   // 1 + 1: the cancelled crop never ran
    }

    internal static string Messages(Exception e)
    {
        var all = new List<string>();
        for (Exception? x = e; x is not null; x = x.InnerException) all.Add(x.Message);
        if (e is AggregateException a) all.AddRange(a.InnerExceptions.Select(i => i.Message));
        return string.Join(" | ", all);
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>Sends another content without a Content-Length (Transfer-Encoding: chunked).</summary>
sealed class ChunkedContent : HttpContent
{
    readonly HttpContent inner;

    public ChunkedContent(HttpContent inner)
    {
        this.inner = inner;
        Headers.ContentType = inner.Headers.ContentType;
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => inner.CopyToAsync(stream);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
