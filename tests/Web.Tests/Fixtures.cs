using Microsoft.Playwright;

namespace AlexNet.Web.Tests;

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
