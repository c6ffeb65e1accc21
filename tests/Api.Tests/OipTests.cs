using System.Buffers.Binary;
using System.Net.Http.Headers;
using AlexNet.Api.Oip.Grpc;
using AlexNet.Model.Imaging;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace AlexNet.Api.Tests;

/// <summary>The real service as a child process with REST on ASPNETCORE_URLS and gRPC on Grpc__Url (both must answer:
/// the gRPC listener must not take REST's addresses away), the answer cache off so that every route really runs the model.</summary>
public sealed class OipService : IAsyncLifetime
{
    readonly TempDir _dir = new();

    public ServiceProcess Service { get; private set; } = null!;
    public int GrpcPort { get; } = Endpoint.FreePort();
    public string Model { get; } = "model-a";
    public byte[][] Images { get; } = [TestImages.Png(1, 90, 72), TestImages.Jpeg(2), TestImages.Png(3, 41, 67)];

    public async Task InitializeAsync()
    {
        var model = _dir.File("model-a.onnx");
        TestModel.Write(model, seed: 1);
        Service = await ServiceProcess.StartAsync(model, _dir.File("gallery.db"), new Dictionary<string, string>
        {
            ["Grpc__Url"] = $"http://127.0.0.1:{GrpcPort}",
            ["Cache__Enabled"] = "false",
        });
    }

    /// <summary>/api/classify's answer for each image: all ten classes, best first.</summary>
    public async Task<ClassScore[][]> ClassifyAsync()
    {
        var response = await (await Service.Client.PostAsync("/api/classify?k=10", Http.Form(Images))).JsonAsync<ClassifyResponse>();
        return [.. response.Results.Select(r => r.Top)];
    }

    public GrpcChannel Channel() => GrpcChannel.ForAddress($"http://127.0.0.1:{GrpcPort}");

    public Task DisposeAsync()
    {
        Service?.Dispose();
        _dir.Dispose();
        return Task.CompletedTask;
    }
}

/// <summary>
/// The Open Inference Protocol (issue 18): REST /v2 and gRPC against a real Kestrel listener, compared with
/// /api/classify on the same images: the same top-5 and every probability within <see cref="Tolerance"/>.
/// </summary>
public sealed class OipTests(OipService fixture) : IClassFixture<OipService>
{
    /// <summary>Absolute, on probabilities: batches of other sizes may sum in another order.</summary>
    const float Tolerance = 1e-6f;

    HttpClient Client => fixture.Service.Client;
    string Infer => $"/v2/models/{fixture.Model}/infer";

    [Fact]
    public async Task V2MetadataAndHealthDescribeTheServedModel()
    {
        using var server = JsonDocument.Parse(await Client.GetStringAsync("/v2"));
        Assert.Equal(["binary_tensor_data", "classification"], server.RootElement.GetProperty("extensions").EnumerateArray().Select(e => e.GetString()!).Order());
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/v2/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("/v2/health/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync($"/v2/models/{fixture.Model}/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync($"/v2/models/{fixture.Model}/versions/1/ready")).StatusCode);

        foreach (var path in new[] { $"/v2/models/{fixture.Model}", $"/v2/models/{fixture.Model}/versions/1" })
        {
            using var metadata = JsonDocument.Parse(await Client.GetStringAsync(path));
            var m = metadata.RootElement;
            Assert.Equal(fixture.Model, m.GetProperty("name").GetString());
            Assert.Equal(["1"], m.GetProperty("versions").EnumerateArray().Select(v => v.GetString()));
            Assert.Equal("onnx_onnxv1", m.GetProperty("platform").GetString());
            var s = TestModel.Spec.InputSize;
            Assert.Equal([("image", "FP32", "-1,3," + s + "," + s), ("image_bytes", "BYTES", "-1")], Tensors(m.GetProperty("inputs")));
            Assert.Equal([("probabilities", "FP32", "-1,10"), ("features", "FP32", $"-1,{TestModel.Spec.FeatureDim}")], Tensors(m.GetProperty("outputs")));
        }
    }

    static (string, string, string)[] Tensors(JsonElement list) => [.. list.EnumerateArray().Select(t => (t.GetProperty("name").GetString()!,
        t.GetProperty("datatype").GetString()!, string.Join(",", t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()))))];

    [Fact]
    public async Task RestInferWithBytesFp32AndBinaryDataGivesClassifysTop5AndProbabilities()
    {
        var expected = await fixture.ClassifyAsync();
        var n = fixture.Images.Length;

        // BYTES in JSON (base64), FP32 out in JSON.
        var bytesJson = new
        {
            id = "rest-1",
            inputs = new[] { new { name = "image_bytes", datatype = "BYTES", shape = new[] { n }, data = fixture.Images.Select(Convert.ToBase64String).ToArray() } },
        };
        using (var response = await Client.PostAsJsonAsync(Infer, bytesJson))
        {
            using var body = JsonDocument.Parse(await Ok(response));
            Assert.Equal("rest-1", body.RootElement.GetProperty("id").GetString());
            var outputs = body.RootElement.GetProperty("outputs");
            Assert.Equal(["probabilities", "features"], outputs.EnumerateArray().Select(o => o.GetProperty("name").GetString()));
            AssertSameAsClassify(expected, Rows(outputs[0]));
            Assert.Equal(n * TestModel.Spec.FeatureDim, outputs[1].GetProperty("data").GetArrayLength());
        }

        // FP32 pixels in JSON, nested [N][3][S][S] as a client's tensor library writes them.
        var pixels = Pixels(fixture.Images);
        var s = TestModel.Spec.InputSize;
        var nested = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, 3).Select(c => Enumerable.Range(0, s).Select(y =>
            pixels.AsSpan(((i * 3 + c) * s + y) * s, s).ToArray()).ToArray()).ToArray()).ToArray();
        var fp32Json = new
        {
            inputs = new[] { new { name = "image", datatype = "FP32", shape = new[] { n, 3, s, s }, data = nested } },
            outputs = new[] { new { name = "probabilities" } },
        };
        using (var response = await Client.PostAsJsonAsync(Infer, fp32Json))
        {
            using var body = JsonDocument.Parse(await Ok(response));
            Assert.Single(body.RootElement.GetProperty("outputs").EnumerateArray());
            AssertSameAsClassify(expected, Rows(body.RootElement.GetProperty("outputs")[0]));
        }

        // Binary tensor data both ways: FP32 pixels in, probabilities and classification strings out.
        var header = JsonSerializer.SerializeToUtf8Bytes(new
        {
            inputs = new[] { new { name = "image", datatype = "FP32", shape = new[] { n, 3, s, s }, parameters = new { binary_data_size = pixels.Length * 4 } } },
            outputs = new object[]
            {
                new { name = "probabilities", parameters = new { binary_data = true } },
            },
        });
        var (json, binary) = await PostBinaryAsync(header, Raw(pixels));
        var output = json.RootElement.GetProperty("outputs")[0];
        Assert.Equal(n * 10 * 4, output.GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.False(output.TryGetProperty("data", out _));
        AssertSameAsClassify(expected, [.. Enumerable.Range(0, n).Select(i => Floats(binary.AsSpan(i * 40, 40)))]);

        // Binary BYTES in (length-prefixed), the classification extension out, as binary.
        header = JsonSerializer.SerializeToUtf8Bytes(new
        {
            inputs = new[] { new { name = "image_bytes", datatype = "BYTES", shape = new[] { n }, parameters = new { binary_data_size = fixture.Images.Sum(i => 4 + i.Length) } } },
            outputs = new[] { new { name = "probabilities", parameters = new { classification = 5 } } },
            parameters = new { binary_data_output = true },
        });
        (json, binary) = await PostBinaryAsync(header, LengthPrefixed(fixture.Images));
        Assert.Equal([n, 5], json.RootElement.GetProperty("outputs")[0].GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()));
        var strings = Strings(binary);
        for (var i = 0; i < n; i++)
            Assert.Equal(expected[i].Take(5).Select(c => $"{c.Probability.ToString("F6", System.Globalization.CultureInfo.InvariantCulture)}:{c.Index}:{c.Label}"),
                strings.Skip(i * 5).Take(5));
    }

    async Task<(JsonDocument Json, byte[] Binary)> PostBinaryAsync(byte[] header, byte[] tensors)
    {
        var content = new ByteArrayContent([.. header, .. tensors]);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        content.Headers.Add("Inference-Header-Content-Length", header.Length.ToString());
        using var response = await Client.PostAsync(Infer, content);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {Encoding.UTF8.GetString(body)}");
        var length = int.Parse(response.Headers.GetValues("Inference-Header-Content-Length").Single());
        return (JsonDocument.Parse(body.AsMemory(0, length)), body[length..]);
    }

    [Fact]
    public async Task RestErrorsAreJsonErrorsWithTritonsStatuses()
    {
        var s = TestModel.Spec.InputSize;
        var image = Convert.ToBase64String(fixture.Images[0]);
        await AssertErrorAsync(await Client.GetAsync("/v2/models/no-such-model"), HttpStatusCode.NotFound, "no-such-model");
        await AssertErrorAsync(await Client.GetAsync($"/v2/models/{fixture.Model}/versions/7"), HttpStatusCode.NotFound, "version");
        await AssertErrorAsync(await Client.PostAsJsonAsync("/v2/models/no-such-model/infer",
            new { inputs = new[] { new { name = "image_bytes", datatype = "BYTES", shape = new[] { 1 }, data = new[] { image } } } }), HttpStatusCode.NotFound, "no-such-model");
        await AssertErrorAsync(await Client.PostAsJsonAsync(Infer,   // wrong datatype for the input
            new { inputs = new[] { new { name = "image_bytes", datatype = "FP32", shape = new[] { 1 }, data = new[] { 1f } } } }), HttpStatusCode.BadRequest, "datatype FP32; it takes BYTES");
        await AssertErrorAsync(await Client.PostAsJsonAsync(Infer,   // a datatype the server does not take
            new { inputs = new[] { new { name = "image", datatype = "INT8", shape = new[] { 1 }, data = new[] { 1 } } } }), HttpStatusCode.BadRequest, "INT8");
        await AssertErrorAsync(await Client.PostAsJsonAsync(Infer,   // wrong shape: the model's side is s, not s + 1
            new { inputs = new[] { new { name = "image", datatype = "FP32", shape = new[] { 1, 3, s + 1, s + 1 }, data = new float[3 * (s + 1) * (s + 1)] } } }),
            HttpStatusCode.BadRequest, $"[N, 3, {s}, {s}]");
        await AssertErrorAsync(await Client.PostAsJsonAsync(Infer,   // the data does not fill the shape
            new { inputs = new[] { new { name = "image", datatype = "FP32", shape = new[] { 1, 3, s, s }, data = new float[7] } } }), HttpStatusCode.BadRequest, "its shape says");
        await AssertErrorAsync(await Client.PostAsJsonAsync(Infer,   // element count overflow: 2^62 x 4 wraps a 64-bit count to 0
            new { inputs = new[] { new { name = "image", datatype = "FP32", shape = new[] { 1L << 62, 4 }, data = Array.Empty<float>() } } }),
            HttpStatusCode.BadRequest, "overflows");
        await AssertErrorAsync(await Client.PostAsJsonAsync(Infer,
            new { inputs = new[] { new { name = "image_bytes", datatype = "BYTES", shape = new[] { 1 }, data = new[] { Convert.ToBase64String("not an image"u8) } } } }),
            HttpStatusCode.BadRequest, "JPEG, PNG");
        await AssertErrorAsync(await Client.PostAsync(Infer, new StringContent("{\"inputs\": [", Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest, "JSON");
        await AssertErrorAsync(await Client.PostAsJsonAsync(Infer,
            new { inputs = new[] { new { name = "image_bytes", datatype = "BYTES", shape = new[] { 1 }, data = new[] { image } } }, outputs = new[] { new { name = "logits" } } }),
            HttpStatusCode.BadRequest, "logits");

        // Still healthy afterwards.
        using var ok = await Client.PostAsJsonAsync(Infer, new { inputs = new[] { new { name = "image_bytes", datatype = "BYTES", shape = new[] { 1 }, data = new[] { image } } } });
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    internal static async Task AssertErrorAsync(HttpResponseMessage response, HttpStatusCode status, string mentions)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync();
            Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
            Assert.StartsWith("application/json", response.Content.Headers.ContentType?.ToString());
            using var body = JsonDocument.Parse(text);
            Assert.Equal(["error"], body.RootElement.EnumerateObject().Select(p => p.Name));
            Assert.Contains(mentions, body.RootElement.GetProperty("error").GetString());
        }
    }

    [Fact]
    public async Task GrpcClientGetsTheSameAnswersAsClassify()
    {
        var expected = await fixture.ClassifyAsync();
        using var channel = fixture.Channel();
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var n = fixture.Images.Length;

        Assert.True((await client.ServerLiveAsync(new ServerLiveRequest())).Live);
        Assert.True((await client.ServerReadyAsync(new ServerReadyRequest())).Ready);
        Assert.True((await client.ModelReadyAsync(new ModelReadyRequest { Name = fixture.Model })).Ready);
        Assert.Contains("classification", (await client.ServerMetadataAsync(new ServerMetadataRequest())).Extensions);
        var metadata = await client.ModelMetadataAsync(new ModelMetadataRequest { Name = fixture.Model, Version = "1" });
        Assert.Equal(["image", "image_bytes"], metadata.Inputs.Select(i => i.Name));
        Assert.Equal([-1L, 10], metadata.Outputs[0].Shape);

        // Typed contents: FP32 pixels in fp32_contents, probabilities back in fp32_contents.
        var s = TestModel.Spec.InputSize;
        var typed = new ModelInferRequest { ModelName = fixture.Model, Id = "grpc-typed", Outputs = { new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "probabilities" } } };
        typed.Inputs.Add(new ModelInferRequest.Types.InferInputTensor
        {
            Name = "image", Datatype = "FP32", Shape = { n, 3, s, s }, Contents = new InferTensorContents { Fp32Contents = { Pixels(fixture.Images) } },
        });
        var answer = await client.ModelInferAsync(typed);
        Assert.Equal("grpc-typed", answer.Id);
        Assert.Equal([(long)n, 10], answer.Outputs[0].Shape);
        var probabilities = answer.Outputs[0].Contents.Fp32Contents.ToArray();
        AssertSameAsClassify(expected, [.. Enumerable.Range(0, n).Select(i => probabilities[(i * 10)..((i + 1) * 10)])]);

        // Raw contents: length-prefixed encoded images in, raw probabilities and classification strings out.
        var raw = new ModelInferRequest { ModelName = fixture.Model, ModelVersion = "1", RawInputContents = { ByteString.CopyFrom(LengthPrefixed(fixture.Images)) } };
        raw.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "image_bytes", Datatype = "BYTES", Shape = { n } });
        raw.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "probabilities" });
        answer = await client.ModelInferAsync(raw);
        Assert.Null(answer.Outputs[0].Contents);
        var bytes = answer.RawOutputContents[0].ToByteArray();
        AssertSameAsClassify(expected, [.. Enumerable.Range(0, n).Select(i => Floats(bytes.AsSpan(i * 40, 40)))]);

        var top = new ModelInferRequest { ModelName = fixture.Model };
        top.Inputs.Add(new ModelInferRequest.Types.InferInputTensor
        {
            Name = "image_bytes", Datatype = "BYTES", Shape = { n }, Contents = new InferTensorContents { BytesContents = { fixture.Images.Select(ByteString.CopyFrom) } },
        });
        top.Outputs.Add(new ModelInferRequest.Types.InferRequestedOutputTensor { Name = "probabilities", Parameters = { ["classification"] = new InferParameter { Int64Param = 5 } } });
        answer = await client.ModelInferAsync(top);
        var strings = answer.Outputs[0].Contents.BytesContents.Select(b => b.ToStringUtf8()).ToArray();
        for (var i = 0; i < n; i++)
            Assert.Equal(expected[i].Take(5).Select(c => $"{c.Index}:{c.Label}"), strings.Skip(i * 5).Take(5).Select(x => x[(x.IndexOf(':') + 1)..]));

        // Errors: the gRPC status of each refusal.
        var unknown = await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(new ModelInferRequest { ModelName = "no-such-model" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        var wrong = new ModelInferRequest { ModelName = fixture.Model };
        wrong.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "image", Datatype = "FP32", Shape = { 1, 3, s, s }, Contents = new InferTensorContents { Fp32Contents = { 1f } } });
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(wrong).ResponseAsync)).StatusCode);
        var overflow = new ModelInferRequest { ModelName = fixture.Model };
        overflow.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "image", Datatype = "FP32", Shape = { 1L << 62, 4 } });
        var e = await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(overflow).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("overflows", e.Status.Detail);
    }

    [Fact]
    public async Task NodeGrpcClientLoadingTheProtoAtRunTimeGetsTheSameAnswers()
    {
        var expected = await fixture.ClassifyAsync();
        var root = Repository.Root;
        var folder = Path.Combine(root, "tests", "Api.Tests", "OipNode");
        Assert.True(Directory.Exists(Path.Combine(folder, "node_modules", "@grpc", "grpc-js")),
            $"{folder}/node_modules is missing: run `npm ci` there (test.sh does).");
        using var dir = new TempDir();
        var files = fixture.Images.Select((bytes, i) => dir.File($"image-{i}.bin")).ToArray();
        for (var i = 0; i < files.Length; i++) await File.WriteAllBytesAsync(files[i], fixture.Images[i]);
        var info = new ProcessStartInfo("node") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "client.js", Path.Combine(root, "src", "Api", "Oip", "inference.proto"), $"127.0.0.1:{fixture.GrpcPort}", fixture.Model }.Concat(files))
            info.ArgumentList.Add(a);
        using var node = Process.Start(info)!;
        var stdout = node.StandardOutput.ReadToEndAsync();
        var stderr = node.StandardError.ReadToEndAsync();
        Assert.True(node.WaitForExit(60_000), "node did not finish in 60 s");
        Assert.True(node.ExitCode == 0, $"node exited with {node.ExitCode}: {await stderr}");

        using var answer = JsonDocument.Parse(await stdout);
        var r = answer.RootElement;
        Assert.True(r.GetProperty("live").GetBoolean());
        Assert.True(r.GetProperty("ready").GetBoolean());
        Assert.Equal(fixture.Model, r.GetProperty("metadata").GetProperty("name").GetString());
        Assert.Equal("node-typed", r.GetProperty("id").GetString());
        Assert.Equal("NOT_FOUND", r.GetProperty("unknown").GetString());
        var n = fixture.Images.Length;
        var probabilities = r.GetProperty("probabilities").EnumerateArray().Select(p => p.GetSingle()).ToArray();
        Assert.Equal(n * 10, probabilities.Length);
        AssertSameAsClassify(expected, [.. Enumerable.Range(0, n).Select(i => probabilities[(i * 10)..((i + 1) * 10)])]);
        var top3 = r.GetProperty("top3").EnumerateArray().Select(t => t.GetString()!).ToArray();
        for (var i = 0; i < n; i++)
            Assert.Equal(expected[i].Take(3).Select(c => $"{c.Index}:{c.Label}"), top3.Skip(i * 3).Take(3).Select(x => x[(x.IndexOf(':') + 1)..]));
    }

    /// <summary>Each row's top 5 is classify's, and every class's probability is within <see cref="Tolerance"/> of classify's.</summary>
    static void AssertSameAsClassify(ClassScore[][] expected, float[][] rows)
    {
        Assert.Equal(expected.Length, rows.Length);
        for (var i = 0; i < rows.Length; i++)
        {
            Assert.Equal(expected[i].Take(5).Select(c => c.Index), Maths.TopK(rows[i], 5).Select(t => t.Index));
            foreach (var c in expected[i])
                Assert.True(Math.Abs(rows[i][c.Index] - c.Probability) <= Tolerance,
                    $"image {i}, class {c.Index}: {rows[i][c.Index]} here, {c.Probability} from /api/classify");
        }
    }

    static async Task<string> Ok(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return text;
    }

    static float[][] Rows(JsonElement output)
    {
        var shape = output.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray();
        var data = output.GetProperty("data").EnumerateArray().Select(x => x.GetSingle()).ToArray();
        return [.. Enumerable.Range(0, shape[0]).Select(i => data[(i * shape[1])..((i + 1) * shape[1])])];
    }

    /// <summary>The central crop of each image as the service's preprocessing writes it, (N, 3, S, S): the hardened
    /// decoder and the model's <see cref="ImagePreprocessor"/>, computed here on the client side.</summary>
    static float[] Pixels(byte[][] images)
    {
        var pre = new ImagePreprocessor(TestModel.Spec.ResizeSize, TestModel.Spec.InputSize);
        var pixels = new float[images.Length * pre.CropLength];
        for (var i = 0; i < images.Length; i++)
        {
            using var image = SafeImageDecoder.Default.Decode(images[i]);
            pre.WriteCrop(pre.Prepare(image), pre.Center, pixels.AsSpan(i * pre.CropLength, pre.CropLength));
        }
        return pixels;
    }

    static byte[] Raw(float[] floats)
    {
        var bytes = new byte[floats.Length * 4];
        for (var i = 0; i < floats.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), floats[i]);
        return bytes;
    }

    static float[] Floats(ReadOnlySpan<byte> bytes)
    {
        var floats = new float[bytes.Length / 4];
        for (var i = 0; i < floats.Length; i++) floats[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(i * 4)..]);
        return floats;
    }

    static byte[] LengthPrefixed(IEnumerable<byte[]> elements)
    {
        using var stream = new MemoryStream();
        foreach (var e in elements)
        {
            stream.Write(BitConverter.GetBytes((uint)e.Length));   // little-endian on every machine .NET 10 runs on here
            stream.Write(e);
        }
        return stream.ToArray();
    }

    static string[] Strings(byte[] bytes)
    {
        var strings = new List<string>();
        for (var at = 0; at < bytes.Length;)
        {
            var n = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at));
            strings.Add(Encoding.UTF8.GetString(bytes, at + 4, n));
            at += 4 + n;
        }
        return [.. strings];
    }
}

/// <summary>A full queue through a real Kestrel listener: 503 with Retry-After and the protocol's {"error"} body.</summary>
public sealed class OipOverloadTests : IDisposable
{
    readonly TempDir _dir = new();

    [Fact]
    public async Task FullQueueGets503ErrorWithRetryAfter()
    {
        var model = _dir.File("model-q.onnx");
        TestModel.Write(model, seed: 3);
        var gate = new HoldingGate();
        await using var factory = new ApiFactory(model, _dir.File("gallery.db"), new Dictionary<string, string?>
        {
            ["Inference:QueueCapacity"] = "2",
            ["Inference:MaxBatchSize"] = "1",
            ["Inference:RetryAfterSeconds"] = "2",
            ["Cache:Enabled"] = "false",
        }, services => services.AddSingleton<IInferenceGate>(gate));
        using var client = new HttpClient { BaseAddress = await factory.StartKestrelAsync() };
        var s = TestModel.Spec.InputSize;
        HttpContent Row() => JsonContent.Create(new { inputs = new[] { new { name = "image", datatype = "FP32", shape = new[] { 1, 3, s, s }, data = new float[3 * s * s] } } });
        const string infer = "/v2/models/model-q/infer";

        gate.Hold();
        var first = client.PostAsync(infer, Row());   // taken by the batcher, held at the gate
        await gate.Entered.WaitAsync(TimeSpan.FromSeconds(10));
        var queued = new[] { client.PostAsync(infer, Row()), client.PostAsync(infer, Row()) };
        var batcher = factory.Services.GetRequiredService<InferenceBatcher>();
        for (var wait = Stopwatch.StartNew(); batcher.QueueLength < 2; await Task.Delay(10))
            Assert.True(wait.Elapsed < TimeSpan.FromSeconds(10), $"the queue holds {batcher.QueueLength}");
        var refused = await client.PostAsync(infer, Row());
        gate.Release();

        Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter?.Delta);
        await OipTests.AssertErrorAsync(refused, HttpStatusCode.ServiceUnavailable, "queue is full");
        foreach (var accepted in queued.Prepend(first))
        {
            using var response = await accepted;
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>The repository's root (the folder that holds AlexNet.sln), found from the test's output folder.</summary>
public static class Repository
{
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "AlexNet.sln"))) return dir.FullName;
            throw new DirectoryNotFoundException($"No AlexNet.sln above {AppContext.BaseDirectory}.");
        }
    }
}

/// <summary>
/// The gRPC port is added to REST's addresses, not put in their place (an explicit Kestrel Listen would make Kestrel
/// ignore them): with ASPNETCORE_HTTP_PORTS, as the container images set it, REST answers there and gRPC on Grpc__Url.
/// (OipService covers ASPNETCORE_URLS.)
/// </summary>
public sealed class OipListenerTests : IDisposable
{
    readonly TempDir _dir = new();

    [Fact]
    public async Task RestKeepsAspNetCoreHttpPortsWhileGrpcListensOnItsOwnPort()
    {
        var model = _dir.File("model.onnx");
        TestModel.Write(model, seed: 1);
        var (rest, grpc) = (Endpoint.FreePort(), Endpoint.FreePort());
        using var service = ServiceProcess.Launch(model, _dir.File("gallery.db"), new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = "",
            ["ASPNETCORE_HTTP_PORTS"] = rest.ToString(),
            ["Grpc__Url"] = $"http://127.0.0.1:{grpc}",
        });
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{rest}"), Timeout = TimeSpan.FromSeconds(10) };
        for (var wait = Stopwatch.StartNew(); ; await Task.Delay(100))
        {
            Assert.False(service.HasExited, service.Alive());
            try
            {
                using var ready = await client.GetAsync("/v2/health/ready");
                if (ready.IsSuccessStatusCode) break;
            }
            catch (HttpRequestException) { }   // not listening yet
            Assert.True(wait.Elapsed < TimeSpan.FromSeconds(60), $"REST never answered on {rest}: {service.Log}");
        }
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress($"http://127.0.0.1:{grpc}");
        var grpcClient = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.True((await grpcClient.ServerReadyAsync(new ServerReadyRequest())).Ready);
        Assert.Equal("model", (await grpcClient.ModelMetadataAsync(new ModelMetadataRequest { Name = "model" })).Name);
        using var metadata = JsonDocument.Parse(await client.GetStringAsync("/v2/models/model"));
        Assert.Equal("model", metadata.RootElement.GetProperty("name").GetString());
    }

    public void Dispose() => _dir.Dispose();
}
