using System.Net;
using System.Net.Http.Headers;

namespace AlexNet.Web.Tests;

/// <summary>How the page's files and the conv1 picture are served (HTTP only, no browser).</summary>
public sealed class ServingTests : IDisposable
{
    readonly TempDir _dir = new();

    ApiFactory Server(string model) => new(model, _dir.File($"{Path.GetFileNameWithoutExtension(model)}.db"));

    string Model(string name)
    {
        var path = _dir.File(name);
        TestModel.Write(path, seed: 1);
        return path;
    }

    [Fact]
    public async Task PageFilesComeWithSelfOnlyCspNoSniffAndRevalidation()
    {
        await using var server = Server(Model("model.onnx"));
        var client = await server.ReadyClientAsync();

        foreach (var (path, type) in new[] { ("/", "text/html"), ("/app.js", "text/javascript"), ("/app.css", "text/css"),
            ("/icons.svg", "image/svg+xml"), ("/favicon.svg", "image/svg+xml") })
        {
            using var response = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(type, response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
                response.Headers.GetValues("Content-Security-Policy").Single());
            Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
            Assert.True(response.Headers.CacheControl?.NoCache, $"{path} is not revalidated");

            // Revalidation is cheap: the ETag gives a 304.
            using var again = new HttpRequestMessage(HttpMethod.Get, path);
            again.Headers.IfNoneMatch.Add(response.Headers.ETag!);
            using var notModified = await client.SendAsync(again);
            Assert.Equal(HttpStatusCode.NotModified, notModified.StatusCode);
        }

        var html = await client.GetStringAsync("/");
        Assert.DoesNotContain("<script>", html);   // no inline script: the CSP would block it
        Assert.DoesNotContain("style=", html);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org", ""));   // nothing from elsewhere
        Assert.DoesNotContain("https://", html);
    }

    [Fact]
    public async Task Conv1PictureIsDrawnFromTheServedModelsOwnWeights()
    {
        // No picture beside the file: the service draws conv1 (both towers: 2 x 24 kernels of 5x5x3) from the weights.
        await using var server = Server(Model("model.onnx"));
        var client = await server.ReadyClientAsync();
        using var response = await client.GetAsync("/api/model/conv1.png");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        using var picture = SixLabors.ImageSharp.Image.Load<SixLabors.ImageSharp.PixelFormats.Rgb24>(await response.Content.ReadAsByteArrayAsync());

        // The layout of the worker's conv1.png: 5x5 kernels at 9 px a weight, tiles of 47 px, 24 a row.
        var s = TestModel.Spec;
        const int px = 9, tile = 5 * px + 2, perRow = 24;
        Assert.Equal((perRow * tile + 2, 2 * tile + 2), (picture.Width, picture.Height));
        var w = AlexNet.Model.Onnx.AlexNetOnnxGraph.RandomWeights(s, seed: 1);   // what TestModel.Write(seed: 1) wrote
        var kernels = w["conv1a.weight"].Data.Concat(w["conv1b.weight"].Data).ToArray();   // towers a then b: one Conv of 48
        var plane = s.Conv1Kernel * s.Conv1Kernel;
        for (var i = 0; i < 2 * s.Conv1; i++)
        {
            var kernel = kernels.AsSpan(i * 3 * plane, 3 * plane).ToArray();
            float min = kernel.Min(), range = kernel.Max() - min;
            for (var y = 0; y < s.Conv1Kernel; y++)
                for (var x = 0; x < s.Conv1Kernel; x++)
                {
                    var got = picture[1 + i % perRow * tile + 1 + x * px + px / 2, 1 + i / perRow * tile + 1 + y * px + px / 2];
                    byte Want(int c) => (byte)Math.Clamp(255 * (kernel[c * plane + y * s.Conv1Kernel + x] - min) / range, 0, 255);
                    Assert.True((Want(0), Want(1), Want(2)) == (got.R, got.G, got.B),
                        $"kernel {i} at ({x}, {y}): drawn {got}, weights give ({Want(0)}, {Want(1)}, {Want(2)})");
                }
        }
    }

    [Fact]
    public async Task Conv1PictureFollowsAReloadedModel()
    {
        var path = Model("model.onnx");
        await using var server = new ApiFactory(path, _dir.File("reload.db"));
        var client = await server.ReadyClientAsync();
        var first = await client.GetByteArrayAsync("/api/model/conv1.png");
        TestModel.Write(path, seed: 2);
        using var reload = new HttpRequestMessage(HttpMethod.Post, "/api/model/reload");
        reload.Headers.Add("X-Api-Key", ApiFactory.Key);
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(reload)).StatusCode);
        var second = await client.GetByteArrayAsync("/api/model/conv1.png");
        Assert.NotEqual(first, second);
    }

    public void Dispose() => _dir.Dispose();
}
