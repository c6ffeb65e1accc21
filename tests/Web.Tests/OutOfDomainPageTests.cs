using Microsoft.Playwright;
using Xunit.Abstractions;
using static Microsoft.Playwright.Assertions;

namespace AlexNet.Web.Tests;

/// <summary>
/// The page with the bundled demo model, in a real browser against the real service: a real photo gets the
/// out-of-domain notice instead of a confident garment, and a Fashion-MNIST test image gets its class and no notice.
/// </summary>
public sealed class OutOfDomainPageTests(ITestOutputHelper output) : IAsyncLifetime
{
    readonly TempDir _dir = new();
    ApiFactory _server = null!;
    Uri _address = null!;
    IPlaywright _playwright = null!;
    IBrowser _browser = null!;
    readonly List<string> _problems = [];

    public async Task InitializeAsync()
    {
        _server = new ApiFactory(FashionMnistSamples.DemoModel(), _dir.File("gallery.db"));
        _address = await _server.StartKestrelAsync();
        (_playwright, _browser) = await Chromium.LaunchAsync();
        SetDefaultExpectTimeout(30_000);
    }

    public async Task DisposeAsync()
    {
        if (_browser is not null) await _browser.DisposeAsync();
        _playwright?.Dispose();
        if (_server is not null) await _server.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task APhotoGetsTheNoticeAndATestImageItsClassWithout()
    {
        var page = await _browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 900 } });
        page.SetDefaultTimeout(30_000);
        page.PageError += (_, e) => _problems.Add($"page error: {e}");
        await page.GotoAsync(_address.ToString());
        await Expect(page.Locator("html[data-ready=true]")).ToHaveCountAsync(1);
        var notice = page.Locator("#ood-notice");

        await page.Locator("#file-input").SetInputFilesAsync(new FilePayload
        {
            Name = "china.jpg", MimeType = "image/jpeg", Buffer = FashionMnistSamples.Photo("china.jpg"),
        });
        await Expect(notice).ToBeVisibleAsync();
        await Expect(notice).ToContainTextAsync("looks unlike anything the model was trained on");
        await Expect(page.Locator("#scores")).ToBeHiddenAsync();          // no confident garment for a photo
        await Expect(page.Locator("#add-label")).ToHaveValueAsync("");    // nor a garment pre-filled as its gallery label
        await page.ScreenshotAsync(new() { Path = Shot("ood-photo"), FullPage = true });
        await page.Locator("#ood-show").ClickAsync();                     // the guesses are there for who asks
        await Expect(page.Locator("#scores li.score:not(.skeleton)")).ToHaveCountAsync(5);

        var (png, label) = FashionMnistSamples.Test(0);
        await page.Locator("#file-input").SetInputFilesAsync(new FilePayload { Name = "sample.png", MimeType = "image/png", Buffer = png });
        await Expect(page.Locator("#file-name")).ToHaveTextAsync("sample.png");
        var scores = page.Locator("#scores li.score:not(.skeleton)");
        await Expect(scores).ToHaveCountAsync(5);
        await Expect(scores.First).ToHaveAttributeAsync("data-index", label.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Expect(notice).ToBeHiddenAsync();
        await page.ScreenshotAsync(new() { Path = Shot("ood-sample"), FullPage = true });
        Assert.Empty(_problems);
    }

    string Shot(string name)
    {
        var path = Path.Combine(Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots")).FullName, $"{name}.png");
        output.WriteLine($"screenshot: {path}");
        return path;
    }
}
