namespace AlexNet.Training.Tests;

public class NativePatchTests
{
    static readonly HashSet<string> Anchor = ["_ZSt21ios_base_library_initv"];

    /// <summary>The unpatched library as NuGet ships it.</summary>
    static string Pristine()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(path), $"TorchSharp's package is not at {path}");
        return path;
    }

    [Fact]
    public void ThePackagedLibraryNeedsGlibcxx3432ForOneAnchorSymbolAndThePatchWeakensIt()
    {
        var bytes = File.ReadAllBytes(Pristine());
        var outcome = ElfVersionPatcher.Weaken(bytes, "GLIBCXX_3.4.32", Anchor, out var detail);
        Assert.Equal(ElfPatchOutcome.Patched, outcome);
        Assert.Contains("_ZSt21ios_base_library_initv", detail);
        Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionPatcher.Weaken(bytes, "GLIBCXX_3.4.32", Anchor, out _));
        var original = File.ReadAllBytes(Pristine());
        Assert.Equal(1, original.Zip(bytes).Count(p => p.First != p.Second));   // a one-byte change
    }

    [Fact]
    public void ThePatcherRefusesAVersionThatOtherSymbolsUse()
    {
        var bytes = File.ReadAllBytes(Pristine());
        Assert.Equal(ElfPatchOutcome.Refused, ElfVersionPatcher.Weaken(bytes, "GLIBCXX_3.4.32", new HashSet<string>(), out var detail));
        Assert.Contains("_ZSt21ios_base_library_initv", detail);
        // GLIBCXX_3.4 is used by hundreds of symbols: weakening it would hide real missing functions.
        Assert.Equal(ElfPatchOutcome.Refused, ElfVersionPatcher.Weaken(bytes, "GLIBCXX_3.4", Anchor, out _));
        Assert.Equal(ElfPatchOutcome.VersionNotRequired, ElfVersionPatcher.Weaken(bytes, "GLIBCXX_9.9.99", Anchor, out _));
    }

    [Fact]
    public void TheBuildOutputCarriesThePatchedCopyAndTheCacheIsUntouched()
    {
        var output = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so"));
        Assert.Equal(ElfPatchOutcome.AlreadyWeak, ElfVersionPatcher.Weaken(output, "GLIBCXX_3.4.32", Anchor, out _));
        var cache = File.ReadAllBytes(Pristine());
        Assert.Equal(ElfPatchOutcome.Patched, ElfVersionPatcher.Weaken(cache, "GLIBCXX_3.4.32", Anchor, out _));
        Assert.False(Directory.Exists(Path.Combine(AppContext.BaseDirectory, "cpu")), "TorchSharp's fallback copy ran: the load failed once");
    }
}
