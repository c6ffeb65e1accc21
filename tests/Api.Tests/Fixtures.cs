using System.Net.Http.Headers;
using System.Net.Http.Json;
using AlexNet.Model;
using AlexNet.Model.Onnx;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Api.Tests;

/// <summary>A folder under the system temp folder, removed on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateDirectory(System.IO.Path.Combine(System.IO.Path.GetTempPath(), "alexnet-api-tests",
        Guid.NewGuid().ToString("N"))).FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// Two real compact-preset models (10 classes) written with <see cref="AlexNetOnnxGraph"/> from seeded He-normal
/// weights (std sqrt(2 / fan_in), biases 0): confident outputs, so sorting, averaging and mixing errors show.
/// </summary>
public sealed class ModelFixture : IDisposable
{
    public static readonly string[] Labels = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
    /// <summary>WordNet ids for some classes; "" where unknown.</summary>
    public static readonly string[] Synsets = ["n04370456", "", "n03980874", "n03236735", "", "n04133789", "", "n04199027", "", ""];
    public static readonly AlexNetSpec Spec = AlexNetSpec.Compact(10);

    readonly TempDir _dir = new();

    public ModelFixture()
    {
        ModelA = _dir.File("model-a.onnx");
        ModelB = _dir.File("model-b.onnx");
        Write(ModelA, seed: 1);
        Write(ModelB, seed: 2);
    }

    public string ModelA { get; }
    public string ModelB { get; }

    public static void Write(string path, int seed)
    {
        var s = Spec;
        var w = AlexNetOnnxGraph.RandomWeights(s, seed);
        var norm = new Normalization([128f, 128f, 128f], [64f, 64f, 64f]);   // inputs of about unit scale
        var provenance = new Provenance { Dataset = "test", Epochs = 0, Init = $"He normal, seed {seed}", Command = "ModelFixture" };
        AlexNetOnnxGraph.Build(s, w, norm, new ModelMetadata(Labels, Synsets, provenance)).Save(path);
    }

    public void Dispose() => _dir.Dispose();
}

[CollectionDefinition(Name)]
public sealed class ApiCollection : ICollectionFixture<ModelFixture>
{
    public const string Name = "api";
}

/// <summary>
/// The real service on a test server: a real model file, a real SQLite file, settings in memory. Defaults: CPU,
/// API key "test-key", a generous rate limit, batches without delay.
/// </summary>
public sealed class ApiFactory(string modelPath, string databasePath, IDictionary<string, string?>? settings = null,
    Action<IServiceCollection>? services = null) : WebApplicationFactory<Program>
{
    public const string Key = "test-key";

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        var values = new Dictionary<string, string?>
        {
            ["Inference:ModelPath"] = modelPath,
            ["Inference:Provider"] = "Cpu",
            ["Inference:MaxBatchDelayMs"] = "0",
            ["Inference:IntraOpThreads"] = "1",
            ["Gallery:DatabasePath"] = databasePath,
            ["Security:ApiKey"] = Key,
            ["RateLimit:PermitLimit"] = "100000",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>()) values[k] = v;
        builder.UseEnvironment("Testing");
        builder.ConfigureAppConfiguration(c => c.AddInMemoryCollection(values));
        if (services is not null) builder.ConfigureTestServices(services);
    }

    /// <summary>A client once /health/ready says 200.</summary>
    public async Task<HttpClient> ReadyClientAsync()
    {
        var client = CreateClient();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var response = await client.GetAsync("/health/ready");
            if (response.IsSuccessStatusCode) return client;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Not ready after 30 s: {await response.Content.ReadAsStringAsync()}");
            await Task.Delay(20);
        }
    }
}

/// <summary>Images made in code: a seeded gradient with coloured rectangles, so crops and images differ.</summary>
public static class TestImages
{
    public static Image<Rgb24> Make(int seed, int width = 90, int height = 72)
    {
        var rng = new Random(seed);
        var image = new Image<Rgb24>(width, height);
        var (r0, g0, b0) = (rng.Next(256), rng.Next(256), rng.Next(256));
        var (dx, dy) = (rng.NextDouble() * 3 - 1.5, rng.NextDouble() * 3 - 1.5);
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var t = dx * x + dy * y;
                image[x, y] = new Rgb24(Clamp(r0 + t), Clamp(g0 - t), Clamp(b0 + t / 2));
            }
        for (var i = 0; i < 6; i++)
        {
            var (x0, y0) = (rng.Next(width), rng.Next(height));
            var (w, h) = (rng.Next(4, width / 2), rng.Next(4, height / 2));
            var c = new Rgb24((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256));
            for (var y = y0; y < Math.Min(height, y0 + h); y++)
                for (var x = x0; x < Math.Min(width, x0 + w); x++)
                    image[x, y] = c;
        }
        return image;
    }

    public static byte[] Png(int seed, int width = 90, int height = 72) => Encode(seed, width, height, (i, s) => i.SaveAsPng(s));

    /// <summary>A PNG of per-pixel noise: it hardly compresses (about 3 bytes a pixel).</summary>
    public static byte[] NoisyPng(int seed, int width, int height)
    {
        var rng = new Random(seed);
        var rgb = new byte[width * height * 3];
        rng.NextBytes(rgb);
        using var image = Image.LoadPixelData<Rgb24>(rgb, width, height);
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }
    public static byte[] Jpeg(int seed) => Encode(seed, 90, 72, (i, s) => i.SaveAsJpeg(s));
    public static byte[] Gif(int seed) => Encode(seed, 90, 72, (i, s) => i.SaveAsGif(s));
    public static byte[] Webp(int seed) => Encode(seed, 90, 72, (i, s) => i.SaveAsWebp(s));
    public static byte[] Bmp(int seed) => Encode(seed, 90, 72, (i, s) => i.SaveAsBmp(s));

    static byte[] Encode(int seed, int width, int height, Action<Image<Rgb24>, Stream> save)
    {
        using var image = Make(seed, width, height);
        using var ms = new MemoryStream();
        save(image, ms);
        return ms.ToArray();
    }

    static byte Clamp(double v) => (byte)Math.Clamp((int)v, 0, 255);
}

public static class Http
{
    public static ByteArrayContent Raw(byte[] bytes, string type = "image/png")
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        return content;
    }

    /// <summary>A multipart form with one file field named "image" per image, and optional label fields.</summary>
    public static MultipartFormDataContent Form(IEnumerable<byte[]> images, IEnumerable<string>? labels = null, string field = "image")
    {
        var form = new MultipartFormDataContent();
        var i = 0;
        foreach (var bytes in images)
        {
            var part = new ByteArrayContent(bytes);
            part.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(part, field, $"upload-{i++}.png");
        }
        foreach (var label in labels ?? []) form.Add(new StringContent(label), "label");
        return form;
    }

    public static MultipartFormDataContent Form(params byte[][] images) => Form((IEnumerable<byte[]>)images);

    public static async Task<T> JsonAsync<T>(this HttpResponseMessage response)
    {
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<T>())!;
    }

    public static HttpRequestMessage WithKey(this HttpRequestMessage request, string? key = ApiFactory.Key)
    {
        if (key is not null) request.Headers.Add("X-Api-Key", key);
        return request;
    }

    /// <summary>The summed value of a Prometheus sample line (name and labels as written), or 0 when absent.</summary>
    public static async Task<double> MetricAsync(HttpClient client, string sample)
    {
        var text = await client.GetStringAsync("/metrics");
        return text.Split('\n').Where(l => l.StartsWith(sample + " ", StringComparison.Ordinal))
            .Select(l => double.Parse(l[(sample.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture)).Sum();
    }
}
