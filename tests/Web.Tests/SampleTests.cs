using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace AlexNet.Web.Tests;

/// <summary>
/// What the model knows, where a person meets it (issue 21 item 1): the sample images (GET /api/samples, "Try a
/// sample", Gallery:SeedSamples) and the model's own statement of its domain (GET /api/model, beside the upload box).
/// The browser test serves the bundled demo model and the repository's own models/samples.
/// </summary>
public sealed class SampleTests : IDisposable
{
    readonly TempDir _dir = new();

    static string Repo([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", ".."));

    static string DemoModel => Path.Combine(Repo(), "models", "fashion-mnist-compact.onnx");

    /// <summary>A samples folder made here: three generated PNGs in two class folders, and their manifest.</summary>
    string Samples(params (string File, string Label)[] items)
    {
        var folder = Directory.CreateDirectory(_dir.File($"samples-{Guid.NewGuid():N}")).FullName;
        for (var i = 0; i < items.Length; i++)
        {
            var path = Path.Combine(folder, items[i].File);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (!items[i].File.Contains("..", StringComparison.Ordinal)) File.WriteAllBytes(path, TestImages.Png(seed: 20 + i));
        }
        File.WriteAllText(Path.Combine(folder, "samples.json"), JsonSerializer.Serialize(new
        {
            source = "made by SampleTests",
            items = items.Select(x => new { file = x.File, label = x.Label }),
        }));
        return folder;
    }

    ApiFactory Server(string samples, string db = "gallery.db", bool seed = false) => new(_dir.File("model.onnx"), _dir.File(db),
        new Dictionary<string, string?> { ["Samples:Path"] = samples, ["Gallery:SeedSamples"] = seed ? "true" : "false" });

    static readonly (string, string)[] Three = [("bag/bag-1.png", "Bag"), ("bag/bag-2.png", "Bag"), ("coat/coat-1.png", "Coat")];

    [Fact]
    public async Task SamplesAreListedAndServedByTheirNameNeverByAPath()
    {
        TestModel.Write(_dir.File("model.onnx"), seed: 1);
        var folder = Samples(Three);
        File.WriteAllText(Path.Combine(folder, "secret.png"), "not listed");
        await using var server = Server(folder);
        var client = await server.ReadyClientAsync();

        var list = await client.GetFromJsonAsync<JsonElement>("/api/samples");
        Assert.Equal(["bag-1 Bag", "bag-2 Bag", "coat-1 Coat"],
            list.EnumerateArray().Select(s => $"{s.GetProperty("name").GetString()} {s.GetProperty("label").GetString()}").ToArray());
        foreach (var (s, (file, _)) in list.EnumerateArray().Zip(Three))
        {
            using var response = await client.GetAsync(s.GetProperty("url").GetString());
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(folder, file)), await response.Content.ReadAsByteArrayAsync());
        }
        foreach (var name in new[] { "secret", "secret.png", "..%2Fsamples.json", "bag%2Fbag-1.png", "bag-1.png", "%2E%2E", "nope" })
        {
            using var response = await client.GetAsync($"/api/samples/{name}");
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        }
    }

    [Fact]
    public async Task ASampleOutsideItsFolderStopsTheStartNamingTheManifest()
    {
        TestModel.Write(_dir.File("model.onnx"), seed: 1);
        var folder = Samples(("bag/bag-1.png", "Bag"), ("../model.png", "Model"));
        File.WriteAllBytes(Path.Combine(folder, "..", "model.png"), TestImages.Png(seed: 1));   // exists, but outside
        await using var server = Server(folder);
        var e = await Assert.ThrowsAnyAsync<Exception>(server.ReadyClientAsync);
        var message = e.ToString();
        Assert.Contains(Path.Combine(folder, "samples.json"), message);
        Assert.Contains("'../model.png' is not a .png file inside", message);
    }

    [Fact]
    public async Task SeedSamplesFillsAnEmptyGalleryOnceUnderTheirLabels()
    {
        TestModel.Write(_dir.File("model.onnx"), seed: 1);
        var folder = Samples(Three);
        for (var start = 0; start < 2; start++)   // the second start finds the gallery full and adds nothing
        {
            await using var server = Server(folder, seed: true);
            var client = await server.ReadyClientAsync();
            JsonElement page = default;
            for (var i = 0; i < 100; i++)   // the seeder runs once the model is in service
            {
                page = await client.GetFromJsonAsync<JsonElement>("/api/gallery");
                if (page.GetProperty("total").GetInt32() >= 3) break;
                await Task.Delay(100);
            }
            Assert.Equal(3, page.GetProperty("total").GetInt32());
            Assert.Equal(new[] { "Bag", "Bag", "Coat" }, page.GetProperty("items").EnumerateArray().Select(x => x.GetProperty("label").GetString()!).ToArray());
        }
        await using (var off = Server(folder, db: "other.db"))
        {
            var client = await off.ReadyClientAsync();
            await Task.Delay(500);
            Assert.Equal(0, (await client.GetFromJsonAsync<JsonElement>("/api/gallery")).GetProperty("total").GetInt32());
        }
    }

    [Fact]
    public async Task TheModelSaysWhatItKnowsFromItsOwnMetadata()
    {
        await using (var demo = new ApiFactory(DemoModel, _dir.File("demo.db")))
        {
            var model = await (await demo.ReadyClientAsync()).GetFromJsonAsync<JsonElement>("/api/model");
            Assert.Equal(AlexNet.Model.LabelSet.FashionMnistDomain, model.GetProperty("domain").GetString());
            Assert.Equal(model.GetProperty("domain").GetString(), model.GetProperty("provenance").GetProperty("domain").GetString());
        }
        TestModel.Write(_dir.File("model.onnx"), seed: 1);   // its provenance says nothing about a domain
        await using var plain = Server(Samples(Three));
        var other = await (await plain.ReadyClientAsync()).GetFromJsonAsync<JsonElement>("/api/model");
        Assert.Equal(JsonValueKind.Null, other.GetProperty("domain").ValueKind);
    }

    /// <summary>In the browser, on the demo model: the domain beside the upload box, "Try a sample" shows the service's
    /// own answer, and uploading samples the model knows gives their class, confidently, with no out-of-domain notice
    /// (<c>#ood-notice</c>, the page's element for it).</summary>
    [Fact]
    public async Task ASampleGetsItsClassConfidentlyInTheBrowser()
    {
        await using var server = new ApiFactory(DemoModel, _dir.File("browser.db"));
        var address = await server.StartKestrelAsync();
        var (playwright, browser) = await Chromium.LaunchAsync();
        using var _ = playwright;
        await using var __ = browser;
        var page = await browser.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        SetDefaultExpectTimeout(30_000);
        var problems = new List<string>();
        page.PageError += (_, e) => problems.Add($"page error: {e}");
        await page.GotoAsync(address.ToString());
        await Expect(page.Locator("html[data-ready=true]")).ToHaveCountAsync(1);
        await Expect(page.Locator("#model-domain")).ToBeVisibleAsync();
        await Expect(page.Locator("#model-domain")).ToContainTextAsync("one light garment, shoe or bag on a dark background");

        // "Try a sample": one of the service's samples, and the service's own answer for it.
        await page.Locator("#try-sample").ClickAsync();
        await Expect(page.Locator("#scores li.score:not(.skeleton)")).ToHaveCountAsync(5);
        var name = (await page.Locator("#file-name").TextContentAsync())!;
        Assert.Matches("^[a-z-]+-[0-9]\\.png$", name);
        using var http = new HttpClient { BaseAddress = address };
        using var form = new MultipartFormDataContent { { new ByteArrayContent(await http.GetByteArrayAsync($"/api/samples/{name[..^4]}")), "image", name } };
        var answer = await (await http.PostAsync("/api/classify?k=1", form)).Content.ReadFromJsonAsync<JsonElement>();
        var serviceTop = answer.GetProperty("results")[0].GetProperty("top")[0].GetProperty("index").GetInt32();
        Assert.Equal(serviceTop.ToString(CultureInfo.InvariantCulture), await page.Locator("#scores li.score").First.GetAttributeAsync("data-index"));

        // Uploaded samples: top-1 is the sample's class, above 90%, and nothing says the image looks out of domain.
        foreach (var (file, label) in new[] { ("trouser/trouser-1.png", "Trouser"), ("bag/bag-1.png", "Bag"), ("sneaker/sneaker-1.png", "Sneaker") })
        {
            await page.Locator("#file-input").SetInputFilesAsync(Path.Combine(Repo(), "models", "samples", file));
            await Expect(page.Locator("#file-name")).ToHaveTextAsync(Path.GetFileName(file));
            var top = page.Locator("#scores li.score:not(.skeleton)").First;
            await Expect(top.Locator(".score-label")).ToHaveTextAsync(label);
            var percent = double.Parse((await top.Locator(".score-value").TextContentAsync())!.TrimEnd('%'), CultureInfo.InvariantCulture);
            Assert.True(percent >= 90, $"{file}: {label} at {percent}%");
            await Expect(page.Locator("#ood-notice:visible")).ToHaveCountAsync(0);
        }
        Assert.Empty(problems);
    }

    public void Dispose() => _dir.Dispose();
}
