using System.Net;
using System.Net.Http.Headers;

namespace AlexNet.Web.Tests;

/// <summary>How the page's files and the conv1 picture are served (HTTP only, no browser).</summary>
public sealed class ServingTests : IDisposable
{
    readonly TempDir _dir = new();

    ApiFactory Server(string model) => new(model, _dir.File($"{Path.GetFileNameWithoutExtension(model)}.db"));

    string Model(string name, bool picture)
    {
        var path = _dir.File(name);
        TestModel.Write(path, seed: 1);
        if (picture) TestModel.WriteConv1Picture(Path.ChangeExtension(path, ".conv1.png"), seed: 1);
        return path;
    }

    [Fact]
    public async Task PageFilesComeWithSelfOnlyCspNoSniffAndRevalidation()
    {
        await using var server = Server(Model("model.onnx", picture: false));
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
    public async Task Conv1PictureComesFromTheModelsFolderOr404()
    {
        var withPicture = Model("with.onnx", picture: true);
        await using (var server = Server(withPicture))
        {
            var client = await server.ReadyClientAsync();
            using var response = await client.GetAsync("/api/model/conv1.png");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(await File.ReadAllBytesAsync(Path.ChangeExtension(withPicture, ".conv1.png")), await response.Content.ReadAsByteArrayAsync());
        }

        await using (var server = Server(Model("without.onnx", picture: false)))
        {
            var client = await server.ReadyClientAsync();
            using var response = await client.GetAsync("/api/model/conv1.png");
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains("without.conv1.png", await response.Content.ReadAsStringAsync());
        }
    }

    public void Dispose() => _dir.Dispose();
}
