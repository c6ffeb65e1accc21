namespace AlexNet.Api.Tests;

/// <summary>Every refusal is application/problem+json with the right status, and a good request still works after it.</summary>
[Collection(ApiCollection.Name)]
public sealed class ErrorTests(ModelFixture models) : IDisposable
{
    readonly TempDir _dir = new();

    ApiFactory Factory(IDictionary<string, string?>? settings = null, Action<IServiceCollection>? services = null) =>
        new(models.ModelA, _dir.File("gallery.db"), settings, services);

    static async Task<ProblemDetails> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"Expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = (await response.Content.ReadFromJsonAsync<ProblemDetails>())!;
        Assert.Equal((int)status, problem.Status);
        Assert.False(string.IsNullOrWhiteSpace(problem.Detail ?? problem.Title), body);
        return problem;
    }

    static async Task AssertGoodRequestWorksAsync(HttpClient client)
    {
        using var ok = await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(1)));
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task MissingOrMalformedInputGetsProblem400()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        var requests = new (string Why, Func<Task<HttpResponseMessage>> Send)[]
        {
            ("no body", () => client.PostAsync("/api/classify", null)),
            ("empty raw image", () => client.PostAsync("/api/classify", Http.Raw([]))),
            ("form without an image field", () => client.PostAsync("/api/classify", Http.Form([TestImages.Png(1)], field: "picture"))),
            ("empty file", () => client.PostAsync("/api/classify", Http.Form([]))),
            ("k = 0", () => client.PostAsync("/api/classify?k=0", Http.Raw(TestImages.Png(1)))),
            ("k not a number", () => client.PostAsync("/api/classify?k=five", Http.Raw(TestImages.Png(1)))),
            ("broken multipart", () => client.PostAsync("/api/classify", new StringContent("--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a\"\r\n\r\nxx",
                Encoding.ASCII, "multipart/form-data") { Headers = { ContentType = new("multipart/form-data") { Parameters = { new("boundary", "b") } } } })),
        };
        foreach (var (why, send) in requests)
        {
            using var response = await send();
            var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
            Assert.False(problem.Detail is null && problem.Title is null, why);
        }
        await AssertGoodRequestWorksAsync(client);
    }

    [Fact]
    public async Task EmptyUploadGetsProblem400()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        using var form = new MultipartFormDataContent { { new ByteArrayContent([]), "image", "empty.png" } };
        using var response = await client.PostAsync("/api/classify", form);
        var problem = await AssertProblemAsync(response, HttpStatusCode.BadRequest);
        Assert.Contains("empty", problem.Detail);
        await AssertGoodRequestWorksAsync(client);
    }

    [Fact]
    public async Task TooLargeGetsProblem413()
    {
        await using var factory = Factory(new Dictionary<string, string?>
        {
            ["Uploads:MaxImageBytes"] = "20000",
            ["Uploads:MaxRequestBytes"] = "100000",
            ["Uploads:MaxImagesPerRequest"] = "2",
        });
        var client = await factory.ReadyClientAsync();
        var big = TestImages.NoisyPng(2, 100, 100);
        Assert.True(big.Length > 20000, $"fixture is {big.Length} bytes");

        using var raw = await client.PostAsync("/api/classify", Http.Raw(big));
        await AssertProblemAsync(raw, HttpStatusCode.RequestEntityTooLarge);
        using var inForm = await client.PostAsync("/api/classify", Http.Form(big));
        await AssertProblemAsync(inForm, HttpStatusCode.RequestEntityTooLarge);
        using var tooMany = await client.PostAsync("/api/classify", Http.Form(TestImages.Png(3), TestImages.Png(4), TestImages.Png(5)));
        await AssertProblemAsync(tooMany, HttpStatusCode.RequestEntityTooLarge);
        using var whole = await client.PostAsync("/api/classify", Http.Raw(new byte[150_000]));
        await AssertProblemAsync(whole, HttpStatusCode.RequestEntityTooLarge);
        await AssertGoodRequestWorksAsync(client);
    }

    [Fact]
    public async Task FormatNotAcceptedGetsProblem415()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        var random = new byte[500];
        new Random(5).NextBytes(random);
        var requests = new Func<Task<HttpResponseMessage>>[]
        {
            () => client.PostAsync("/api/classify", new StringContent("hello", Encoding.UTF8, "text/plain")),
            () => client.PostAsync("/api/classify", JsonContent.Create(new { image = "https://example.com/a.png" })),   // no URLs
            () => client.PostAsync("/api/classify", Http.Raw(TestImages.Bmp(1), "image/bmp")),
            () => client.PostAsync("/api/classify", Http.Raw(random, "image/png")),   // the bytes decide, not the header
        };
        foreach (var send in requests)
        {
            using var response = await send();
            await AssertProblemAsync(response, HttpStatusCode.UnsupportedMediaType);
        }
        await AssertGoodRequestWorksAsync(client);
    }

    [Fact]
    public async Task UndecodableOrOverBudgetGetsProblem422()
    {
        await using var factory = Factory(new Dictionary<string, string?> { ["Uploads:MaxPixels"] = "20000" });
        var client = await factory.ReadyClientAsync();
        var png = TestImages.Png(6);
        var truncated = png[..(png.Length / 2)];

        using var broken = await client.PostAsync("/api/classify", Http.Raw(truncated));
        await AssertProblemAsync(broken, HttpStatusCode.UnprocessableEntity);
        using var huge = await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(7, 200, 150)));   // 30,000 pixels
        var problem = await AssertProblemAsync(huge, HttpStatusCode.UnprocessableEntity);
        Assert.Contains("200x150", problem.Detail);
        await AssertGoodRequestWorksAsync(client);
    }

    [Fact]
    public async Task ClientOverItsRateGetsProblem429WithRetryAfter()
    {
        await using var factory = Factory(new Dictionary<string, string?> { ["RateLimit:PermitLimit"] = "3", ["RateLimit:WindowSeconds"] = "1" });
        var client = await factory.ReadyClientAsync();
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 6 && limited is null; i++)
        {
            var response = await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(1)));
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests) limited = response;
            else response.Dispose();
        }

        Assert.NotNull(limited);
        await AssertProblemAsync(limited, HttpStatusCode.TooManyRequests);
        var retryAfter = limited.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.InRange(retryAfter.Value.TotalSeconds, 1, 1);
        Assert.Equal(HttpStatusCode.OK, statuses[0]);
        using (var health = await client.GetAsync("/health/ready")) Assert.Equal(HttpStatusCode.OK, health.StatusCode);   // not limited
        await Task.Delay(retryAfter.Value + TimeSpan.FromMilliseconds(200));
        await AssertGoodRequestWorksAsync(client);
        limited.Dispose();
    }

    [Fact]
    public async Task FullQueueGetsProblem503WithRetryAfter()
    {
        var gate = new HoldingGate();
        await using var factory = Factory(new Dictionary<string, string?>
        {
            ["Inference:QueueCapacity"] = "2",
            ["Inference:MaxBatchSize"] = "1",
            ["Inference:RetryAfterSeconds"] = "2",
            ["Cache:Enabled"] = "false",
        }, services => services.AddSingleton<IInferenceGate>(gate));
        var client = await factory.ReadyClientAsync();

        gate.Hold();
        var first = client.PostAsync("/api/classify", Http.Raw(TestImages.Png(1)));   // taken by the batcher, held at the gate
        await gate.Entered.WaitAsync(TimeSpan.FromSeconds(10));
        var queued = new[] { client.PostAsync("/api/classify", Http.Raw(TestImages.Png(2))), client.PostAsync("/api/classify", Http.Raw(TestImages.Png(3))) };
        await WaitUntilAsync(() => factory.Services.GetRequiredService<InferenceBatcher>().QueueLength == 2);
        using var refused = await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(4)));
        gate.Release();

        await AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable);
        Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter?.Delta);
        foreach (var accepted in queued.Prepend(first))
        {
            using var response = await accepted;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        await AssertGoodRequestWorksAsync(client);
    }

    [Fact]
    public async Task GalleryWritesWithoutTheKeyGetProblem401()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();

        using var missing = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Raw(TestImages.Png(1)) });
        await AssertProblemAsync(missing, HttpStatusCode.Unauthorized);
        using var wrong = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Raw(TestImages.Png(1)) }.WithKey("test-kez"));
        await AssertProblemAsync(wrong, HttpStatusCode.Unauthorized);
        using var delete = await client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "/api/gallery/1"));
        await AssertProblemAsync(delete, HttpStatusCode.Unauthorized);
        Assert.Equal(0, (await (await client.GetAsync("/api/gallery")).JsonAsync<GalleryListResponse>()).Total);

        using var ok = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Raw(TestImages.Png(1)) }.WithKey());
        Assert.Equal(HttpStatusCode.Created, ok.StatusCode);
    }

    [Fact]
    public async Task GalleryWritesWithNoKeyConfiguredGetProblem403()
    {
        await using var factory = Factory(new Dictionary<string, string?> { ["Security:ApiKey"] = "" });
        var client = await factory.ReadyClientAsync();

        using var add = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Raw(TestImages.Png(1)) }.WithKey(""));
        var problem = await AssertProblemAsync(add, HttpStatusCode.Forbidden);
        Assert.Contains("Security:ApiKey", problem.Detail);
        using var guess = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Raw(TestImages.Png(1)) }.WithKey());
        await AssertProblemAsync(guess, HttpStatusCode.Forbidden);
        await AssertGoodRequestWorksAsync(client);
        using var list = await client.GetAsync("/api/gallery");   // reads need no key
        Assert.Equal(HttpStatusCode.OK, list.StatusCode);
    }

    [Fact]
    public async Task UnknownRoutesAndIdsGetProblem404()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        using var route = await client.GetAsync("/api/nothing-here");
        await AssertProblemAsync(route, HttpStatusCode.NotFound);
        using var id = await client.GetAsync("/api/gallery/12345");
        await AssertProblemAsync(id, HttpStatusCode.NotFound);
        using var thumbnail = await client.GetAsync("/api/gallery/12345/thumbnail");
        await AssertProblemAsync(thumbnail, HttpStatusCode.NotFound);
        using var wrongMethod = await client.GetAsync("/api/classify");
        await AssertProblemAsync(wrongMethod, HttpStatusCode.MethodNotAllowed);
    }

    static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("Condition not met in 10 s.");
            await Task.Delay(10);
        }
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>Holds every ONNX Runtime call while held: the model looks busy, so the queue fills.</summary>
public sealed class HoldingGate : IInferenceGate
{
    readonly TaskCompletionSource _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    TaskCompletionSource _open = CompletedSource();

    public Task Entered => _entered.Task;
    public void Hold() => _open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    public void Release() => _open.TrySetResult();

    public async ValueTask WaitAsync(int batchSize, CancellationToken cancellationToken)
    {
        _entered.TrySetResult();
        await _open.Task.WaitAsync(cancellationToken);
    }

    static TaskCompletionSource CompletedSource()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }
}
