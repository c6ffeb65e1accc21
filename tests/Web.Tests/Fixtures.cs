using System.Net;
using AlexNet.Model;
using AlexNet.Model.Onnx;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Web.Tests;

// TempDir, the model writer and TestImages are copied from tests/Api.Tests/Fixtures.cs (trimmed), so that this
// project does not reference Api.Tests and Playwright stays out of it.

/// <summary>A folder under the system temp folder, removed on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateDirectory(System.IO.Path.Combine(System.IO.Path.GetTempPath(), "alexnet-web-tests",
        Guid.NewGuid().ToString("N"))).FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// A real compact-preset model (10 Fashion-MNIST class names) written with <see cref="AlexNetOnnxGraph"/> from seeded
/// He-normal weights, as in Api.Tests: confident, untrained outputs.
/// </summary>
public static class TestModel
{
    public static readonly string[] Labels = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
    static readonly string[] Synsets = ["n04370456", "", "n03980874", "n03236735", "", "n04133789", "", "n04199027", "", ""];

    public static void Write(string path, int seed)
    {
        var s = AlexNetSpec.Compact(10);
        var w = AlexNetOnnxGraph.RandomWeights(s, seed);
        var norm = new Normalization([128f, 128f, 128f], [64f, 64f, 64f]);   // inputs of about unit scale
        var provenance = new Provenance
        {
            Dataset = "test", Epochs = 3, Init = $"He normal, seed {seed}", Command = "TestModel.Write",
            Metrics = new() { ["val_top1_error"] = 0.9, ["val_top5_error"] = 0.5 },
        };
        AlexNetOnnxGraph.Build(s, w, norm, new ModelMetadata(Labels, Synsets, provenance)).Save(path);
    }

    /// <summary>A stand-in for the training worker's conv1 picture: two rows (towers) of 24 5x5 colour kernels, each
    /// pixel 4x4 with a 4-pixel gap.</summary>
    public static void WriteConv1Picture(string path, int seed)
    {
        const int kernels = 24, size = 5, scale = 4, gap = 4;
        var rng = new Random(seed);
        using var image = new Image<Rgb24>(kernels * (size * scale + gap) - gap, 2 * size * scale + gap, new Rgb24(255, 255, 255));
        for (var tower = 0; tower < 2; tower++)
            for (var k = 0; k < kernels; k++)
                for (var y = 0; y < size; y++)
                    for (var x = 0; x < size; x++)
                    {
                        var c = new Rgb24((byte)rng.Next(40, 220), (byte)rng.Next(40, 220), (byte)rng.Next(40, 220));
                        for (var dy = 0; dy < scale; dy++)
                            for (var dx = 0; dx < scale; dx++)
                                image[k * (size * scale + gap) + x * scale + dx, tower * (size * scale + gap) + y * scale + dy] = c;
                    }
        image.SaveAsPng(path);
    }

    static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}

/// <summary>Images made in code: a seeded gradient with coloured rectangles, so images differ.</summary>
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

    public static byte[] Png(int seed, int width = 90, int height = 72)
    {
        using var image = Make(seed, width, height);
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

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

    static byte Clamp(double v) => (byte)Math.Clamp((int)v, 0, 255);
}

/// <summary>
/// The real service, as ApiFactory in Api.Tests configures it (CPU, API key, generous rate limit), optionally on a
/// real Kestrel listener on 127.0.0.1 with a free port, which a browser can reach (a TestServer cannot).
/// </summary>
public sealed class WebServer : WebApplicationFactory<Program>
{
    public const string Key = "test-key";
    readonly Dictionary<string, string?> _settings;

    public WebServer(string modelPath, string databasePath, IDictionary<string, string?>? settings = null, bool kestrel = true)
    {
        _settings = new Dictionary<string, string?>
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
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>()) _settings[k] = v;
        if (kestrel) UseKestrel(o => o.Listen(IPAddress.Loopback, 0));   // port 0: the OS picks a free one
    }

    /// <summary>The Kestrel listener's address, once <see cref="StartAsync"/> has run.</summary>
    public Uri? Address { get; private set; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.ConfigureAppConfiguration(c => c.AddInMemoryCollection(_settings));
    }

    /// <summary>Starts Kestrel and returns its address once /health/ready says 200.</summary>
    public async Task<Uri> StartAsync()
    {
        StartServer();
        var addresses = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses;
        Address = new Uri(addresses.Single());
        using var http = new HttpClient { BaseAddress = Address };
        await WaitReadyAsync(http);
        return Address;
    }

    /// <summary>A TestServer client once /health/ready says 200 (for a factory made with kestrel: false).</summary>
    public async Task<HttpClient> ReadyClientAsync()
    {
        var client = CreateClient();
        await WaitReadyAsync(client);
        return client;
    }

    static async Task WaitReadyAsync(HttpClient client)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var response = await client.GetAsync("/health/ready");
            if (response.IsSuccessStatusCode) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Not ready after 30 s: {await response.Content.ReadAsStringAsync()}");
            await Task.Delay(20);
        }
    }
}

/// <summary>
/// Debian's Chromium driven by Playwright. Playwright's own browser download does not work here (and is never
/// called): the test launches the system binary, and fails, never skips, when it is missing.
/// </summary>
public static class Chromium
{
    /// <summary>ALEXNET_CHROMIUM overrides the path, for machines that keep Chromium elsewhere.</summary>
    public static string Path => Environment.GetEnvironmentVariable("ALEXNET_CHROMIUM") is { Length: > 0 } p ? p : "/usr/bin/chromium";

    // Quiet on a closed network, and able to run as root (no sandbox) in containers and CI.
    static readonly string[] Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"];

    public static async Task<(IPlaywright Playwright, IBrowser Browser)> LaunchAsync()
    {
        Assert.True(File.Exists(Path), $"Chromium is not at {Path}. The browser test drives the system Chromium: install it with " +
            "`apt-get install -y chromium` (CI's .ci/run does), or point ALEXNET_CHROMIUM at another Chromium binary.");
        var playwright = await Microsoft.Playwright.Playwright.CreateAsync();
        try
        {
            return (playwright, await playwright.Chromium.LaunchAsync(new() { ExecutablePath = Path, Headless = true, Args = Args }));
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }
}
