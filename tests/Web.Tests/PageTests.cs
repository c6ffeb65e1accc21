using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace AlexNet.Web.Tests;

/// <summary>
/// The page at / in a real browser against the real service on Kestrel: a generated model, a temp SQLite gallery,
/// an API key. Screenshots of each step go to TestResults/screenshots/ under the test output folder.
/// </summary>
public sealed class PageTests(ITestOutputHelper output) : IAsyncLifetime
{
    const int MaxImageBytes = 256 * 1024;   // small, so that a "too large" file is quick to make and send
    readonly TempDir _dir = new();
    readonly string _shots = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots")).FullName;
    ApiFactory _server = null!;
    Uri _address = null!;
    IPlaywright _playwright = null!;
    IBrowser _browser = null!;
    readonly List<string> _problems = [];   // page errors, CSP violations, requests that left the service

    public async Task InitializeAsync()
    {
        var model = _dir.File("model-a.onnx");
        TestModel.Write(model, seed: 1);
        _server = new ApiFactory(model, _dir.File("gallery.db"), new Dictionary<string, string?>
        {
            ["Uploads:MaxImageBytes"] = MaxImageBytes.ToString(CultureInfo.InvariantCulture),
        });
        _address = await _server.StartKestrelAsync();
        (_playwright, _browser) = await Chromium.LaunchAsync();
        SetDefaultExpectTimeout(30_000);   // two shared cores: be patient, the waits end as soon as the page is right
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        _playwright?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
        _dir.Dispose();
    }

    async Task<IPage> OpenAsync(int width = 1280, int height = 900, Uri? address = null)
    {
        address ??= _address;
        var context = await _browser.NewContextAsync(new() { ViewportSize = new() { Width = width, Height = height }, ColorScheme = ColorScheme.Light });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        page.PageError += (_, e) => _problems.Add($"page error: {e}");
        page.Console += (_, m) =>
        {
            // Chromium logs every 4xx answer as "Failed to load resource"; the refusals are the point of some steps.
            if (m.Type == "error" && !m.Text.StartsWith("Failed to load resource", StringComparison.Ordinal)) _problems.Add($"console: {m.Text}");
        };
        page.Request += (_, r) =>
        {
            if (!r.Url.StartsWith(address.ToString(), StringComparison.Ordinal)) _problems.Add($"request outside the service: {r.Url}");
        };
        var response = await page.GotoAsync(address.ToString());
        Assert.NotNull(response);
        Assert.Equal(200, response.Status);
        Assert.Contains("default-src 'self'", (await response.AllHeadersAsync())["content-security-policy"]);
        await Expect(page.Locator("html[data-ready=true]")).ToHaveCountAsync(1);
        return page;
    }

    async Task ShotAsync(IPage page, string name)
    {
        var path = Path.Combine(_shots, $"{name}.png");
        await page.EvaluateAsync("window.scrollTo(0, 0)");   // a full-page shot of a scrolled page repeats the sticky bar mid-page
        await page.ScreenshotAsync(new() { Path = path, FullPage = true, Animations = ScreenshotAnimations.Disabled });
        output.WriteLine($"screenshot: {path}");
    }

    static FilePayload Png(string name, int seed) => new() { Name = name, MimeType = "image/png", Buffer = TestImages.Png(seed) };

    [Fact]
    public async Task PageClassifiesAddsToTheGallerySearchesAndExplainsRejectedFiles()
    {
        var page = await OpenAsync();
        await Expect(page.Locator("#facts")).ToContainTextAsync("Validation top-1 error");
        await Expect(page.Locator("#facts")).ToContainTextAsync("fp32 (32-bit floating point)");
        await Expect(page.Locator("#kernels")).ToBeVisibleAsync();   // drawn from model-a.onnx's own conv1 weights
        await Expect(page.Locator("#tiles")).ToContainTextAsync("The gallery is empty");
        await ShotAsync(page, "01-start");

        // Keyboard: Tab reaches "Choose an image", and Enter opens the file chooser. The listener goes on first:
        // Playwright turns chooser interception on without waiting for the browser, so a chooser opened at once can be
        // missed (RunAndWaitForFileChooserAsync right before Enter failed about one run in five).
        var chooser = new TaskCompletionSource<IFileChooser>(TaskCreationOptions.RunContinuationsAsynchronously);
        page.FileChooser += (_, c) => chooser.TrySetResult(c);
        var reached = false;
        for (var i = 0; i < 20 && !reached; i++)
        {
            await page.Keyboard.PressAsync("Tab");
            reached = await page.EvaluateAsync<string>("document.activeElement.id") == "choose";
        }
        Assert.True(reached, "Tab never reached the Choose an image button");
        await page.Keyboard.PressAsync("Enter");
        await (await chooser.Task.WaitAsync(TimeSpan.FromSeconds(30))).SetFilesAsync(Png("sample.png", seed: 7));

        // Top 5 as bars with probabilities, most probable first.
        var scores = page.Locator("#scores li.score:not(.skeleton)");
        await Expect(scores).ToHaveCountAsync(5);
        await Expect(page.Locator("#scores .bar")).ToHaveCountAsync(5);
        var probabilities = (await page.Locator("#scores .score-value").AllTextContentsAsync())
            .Select(t => double.Parse(t.TrimStart('<').TrimEnd('%'), CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(probabilities.OrderDescending(), probabilities);
        Assert.InRange(probabilities.Sum(), 0, 100.5);
        Assert.All(await page.Locator("#scores .score-label").AllTextContentsAsync(), l => Assert.Contains(TestModel.Labels, x => l.StartsWith(x, StringComparison.Ordinal)));
        await Expect(page.Locator("#file-name")).ToHaveTextAsync("sample.png");
        await Expect(page.Locator("#hits")).ToContainTextAsync("The gallery is empty");
        var top = int.Parse((await scores.First.GetAttributeAsync("data-index"))!, CultureInfo.InvariantCulture);
        await Expect(page.Locator("#add-label")).ToHaveValueAsync(TestModel.Labels[top]);   // the top class, to edit or keep
        await ShotAsync(page, "02-classified");

        // The 10-crop switch (by keyboard: focus, Space) asks again with tenCrop=true.
        var tenCrop = page.WaitForResponseAsync(r => r.Url.Contains("/api/classify?k=5&tenCrop=true", StringComparison.Ordinal) && r.Status == 200);
        var toggle = page.GetByRole(AriaRole.Switch, new() { Name = "10-crop test-time augmentation" });
        await toggle.FocusAsync();
        await page.Keyboard.PressAsync("Space");
        await Expect(toggle).ToBeCheckedAsync();
        await tenCrop;
        await Expect(page.Locator("#top-meta")).ToContainTextAsync("10 crops");
        await Expect(scores).ToHaveCountAsync(5);

        // Add to the gallery: the key is asked for once; a wrong one is asked for again with the service's reason.
        await page.Locator("#add-label").FillAsync("sample");
        await page.Locator("#add-note").FillAsync("generated, seed 7");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add to gallery" }).ClickAsync();
        var dialog = page.Locator("#key-dialog");
        await Expect(dialog).ToBeVisibleAsync();
        await page.Locator("#key-input").FillAsync("wrong-key");
        await page.Locator("#key-input").PressAsync("Enter");
        await Expect(page.Locator("#key-error")).ToHaveTextAsync("The X-Api-Key header does not match the server's API key.");
        await page.Locator("#key-input").FillAsync(ApiFactory.Key);
        await ShotAsync(page, "03-api-key");
        await page.GetByRole(AriaRole.Button, new() { Name = "Use this key" }).ClickAsync();
        await Expect(dialog).ToBeHiddenAsync();
        await Expect(page.Locator(".toast")).ToContainTextAsync("Added “sample” to the gallery");
        await Expect(page.Locator("#tiles li.tile")).ToHaveCountAsync(1);
        Assert.Equal(ApiFactory.Key, await page.EvaluateAsync<string>("sessionStorage.getItem('alexnet.apiKey')"));

        // The search that follows finds it first, at distance 0.
        var firstHit = page.Locator("#hits li.hit").First;
        await Expect(firstHit.Locator(".distance")).ToHaveTextAsync("0.00");
        await Expect(firstHit.Locator(".hit-label")).ToContainTextAsync("sample");
        await Expect(firstHit.Locator(".badge")).ToHaveTextAsync("Same image");
        await ShotAsync(page, "04-added-and-found");

        // A second image goes in without asking for the key again; then the first one, searched anew, comes back first.
        await page.Locator("#file-input").SetInputFilesAsync(Png("other.png", seed: 8));
        await Expect(page.Locator("#file-name")).ToHaveTextAsync("other.png");
        await Expect(scores).ToHaveCountAsync(5);   // the old answer is cleared when a new image is chosen
        await Expect(page.Locator("#add-label")).Not.ToHaveValueAsync("");   // the top class, written in once the answer came
        await page.Locator("#add-label").FillAsync("other");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add to gallery" }).ClickAsync();
        await Expect(page.Locator("#tiles li.tile")).ToHaveCountAsync(2);
        Assert.False(await dialog.IsVisibleAsync());
        var sampleId = await page.Locator("#tiles li.tile").First.GetAttributeAsync("data-id");

        var search = page.WaitForResponseAsync(r => r.Url.EndsWith("/api/gallery/search?k=5", StringComparison.Ordinal) && r.Status == 200);
        await page.Locator("#file-input").SetInputFilesAsync(Png("sample again.png", seed: 7));
        await search;
        await Expect(page.Locator("#hits li.hit")).ToHaveCountAsync(2);
        await Expect(firstHit).ToHaveAttributeAsync("data-id", sampleId!);
        await Expect(firstHit.Locator(".distance")).ToHaveTextAsync("0.00");
        var second = double.Parse((await page.Locator("#hits li.hit .distance").Nth(1).TextContentAsync())!, CultureInfo.InvariantCulture);
        Assert.True(second > 0, $"the other image is at distance {second}");
        await ShotAsync(page, "05-searched");

        // Similar, from a gallery tile: the other image, with the tile's own image left out.
        await page.GetByRole(AriaRole.Button, new() { Name = "Images similar to sample" }).ClickAsync();
        await Expect(page.Locator("#neighbours-caption")).ToContainTextAsync("which is left out");
        await Expect(page.Locator("#hits li.hit")).ToHaveCountAsync(1);
        await Expect(firstHit.Locator(".hit-label")).ToHaveTextAsync("other");

        // Delete the other image from its tile, after a confirmation.
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete other" }).ClickAsync();
        await Expect(page.Locator("#confirm-dialog")).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Delete", Exact = true }).ClickAsync();
        await Expect(page.Locator("#tiles li.tile")).ToHaveCountAsync(1);
        await Expect(page.Locator("#hits")).ToHaveTextAsync("No other images in the gallery yet.");   // the Similar list, refreshed

        // A file that is not an image: the service's problem detail, word for word, under a plain headline.
        var text = "these are notes, not a picture\n"u8.ToArray();
        await page.Locator("#file-input").SetInputFilesAsync(new FilePayload { Name = "notes.txt", MimeType = "text/plain", Buffer = text });
        var alert = page.Locator("#upload-error");
        await Expect(alert).ToBeVisibleAsync();
        await Expect(page.Locator("#upload-error-title")).ToHaveTextAsync("“notes.txt” is not an image the service reads");
        await Expect(page.Locator("#upload-error-detail")).ToHaveTextAsync(await ProblemDetailAsync(text, "notes.txt"));
        await Expect(page.Locator("#results")).ToBeHiddenAsync();
        await ShotAsync(page, "06-not-an-image");

        // A file over Uploads:MaxImageBytes: 413, said as "too large" with the limit from the service.
        var big = TestImages.NoisyPng(3, 320, 320);
        Assert.True(big.Length > MaxImageBytes);
        await page.Locator("#file-input").SetInputFilesAsync(new FilePayload { Name = "huge.png", MimeType = "image/png", Buffer = big });
        await Expect(page.Locator("#upload-error-title")).ToHaveTextAsync("“huge.png” is too large");
        await Expect(page.Locator("#upload-error-detail")).ToHaveTextAsync(await ProblemDetailAsync(big, "huge.png"));
        await ShotAsync(page, "07-too-large");

        // A narrow screen: nothing wider than the viewport.
        var phone = await OpenAsync(390, 844);
        await phone.Locator("#file-input").SetInputFilesAsync(Png("sample.png", seed: 7));
        await Expect(phone.Locator("#scores li.score:not(.skeleton)")).ToHaveCountAsync(5);
        await Expect(phone.Locator("#hits li.hit .distance").First).ToHaveTextAsync("0.00");
        Assert.True(await phone.EvaluateAsync<bool>("document.documentElement.scrollWidth <= document.documentElement.clientWidth"),
            "the page scrolls sideways at 390 px");
        await ShotAsync(phone, "08-narrow");

        Assert.Empty(_problems);
    }

    /// <summary>The shipped int8 twin of the demo model: the model card says int8 and how it was made, conv1 is drawn
    /// from its int8 kernels, and a sample is classified.</summary>
    [Fact]
    public async Task TheInt8DemoModelShowsItsPrecisionAndClassifies()
    {
        var int8 = FashionMnistSamples.DemoModel().Replace(".onnx", ".int8.onnx");
        await using var server = new ApiFactory(int8, _dir.File("int8.db"));
        var page = await OpenAsync(address: await server.StartKestrelAsync());

        await Expect(page.Locator("#facts .precision")).ToContainTextAsync("int8: weights int8, per output channel, symmetric");
        await Expect(page.Locator("#facts .precision")).ToContainTextAsync("min/max on 500 images");
        await Expect(page.Locator("#kernels")).ToBeVisibleAsync();
        var (png, label) = FashionMnistSamples.Test(1);
        await page.Locator("#file-input").SetInputFilesAsync(new FilePayload { Name = "garment.png", MimeType = "image/png", Buffer = png });
        var scores = page.Locator("#scores li.score:not(.skeleton)");
        await Expect(scores).ToHaveCountAsync(5);
        await Expect(scores.First).ToHaveAttributeAsync("data-index", label.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Empty(_problems);
    }

    [Fact]
    public async Task AThirdPartyModelShowsItsProfileAndClassifiesWithTheGalleryOff()
    {
        // A three-class classifier of the kind torch.onnx.export writes (input "x", raw scores "y", no features),
        // served through a profile beside it.
        var model = _dir.File("third-party.onnx");
        new AlexNet.Model.Onnx.OnnxModelBuilder()
            .FloatInput("x", "N", 3, 16, 16).FloatOutput("y", "N", 3)
            .Node("GlobalAveragePool", ["x"], ["pooled"]).Node("Flatten", ["pooled"], ["y"], ("axis", 1))
            .Save(model);
        File.WriteAllLines(_dir.File("colours.txt"), ["red", "green", "blue"]);
        File.WriteAllText(_dir.File("third-party.profile.json"), """
            { "input": "x", "inputSize": 16, "resize": "squash", "channelOrder": "rgb", "pixelRange": 1,
              "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "scores": "y", "scoresAre": "logits", "labels": "colours.txt" }
            """);
        await using var server = new ApiFactory(model, _dir.File("third-party.db"));
        var page = await OpenAsync(address: await server.StartKestrelAsync());

        await Expect(page.Locator("#facts")).ToContainTextAsync("third-party ONNX file, served through its profile");
        await Expect(page.Locator("#facts")).ToContainTextAsync("RGB, pixels scaled to 0–1, minus [0.5, 0.5, 0.5], over [0.25, 0.25, 0.25]");
        await Expect(page.Locator("#facts")).ToContainTextAsync("logits (softmax applied by the service)");
        await Expect(page.Locator("#facts")).ToContainTextAsync("none: this model has no feature output, so the gallery is off");
        await page.Locator("#file-input").SetInputFilesAsync(Png("sample.png", seed: 7));
        await Expect(page.Locator("#scores li.score:not(.skeleton)")).ToHaveCountAsync(3);
        await Expect(page.Locator("#hits")).ToContainTextAsync("the gallery is off while it serves");
        await Expect(page.Locator("#add-block")).ToBeHiddenAsync();
        await Expect(page.Locator("#neighbours-caption")).ToHaveTextAsync("Off while this model serves.");
        await ShotAsync(page, "09-third-party");
        Assert.Empty(_problems);
    }

    /// <summary>What the service itself says about these bytes as an upload.</summary>
    async Task<string> ProblemDetailAsync(byte[] bytes, string name)
    {
        using var http = new HttpClient { BaseAddress = _address };
        using var form = new MultipartFormDataContent();
        var part = new ByteArrayContent(bytes);
        part.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        form.Add(part, "image", name);
        using var response = await http.PostAsync("/api/classify", form);
        Assert.False(response.IsSuccessStatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        return problem.GetProperty("detail").GetString()!;
    }
}
