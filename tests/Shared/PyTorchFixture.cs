using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace AlexNet.Tests.Shared;

/// <summary>
/// Runs tests/fixtures/torchvision_fixture.py under Debian's interpreter (python3-torch 1.13 and python3-torchvision
/// 0.14 from apt, installed by .ci/run), so that tests compare with PyTorch itself rather than with our reading of it.
/// Linked into the test projects that need it (Training.Tests, Api.Tests).
/// </summary>
public static class PyTorchFixture
{
    // Debian's interpreter, where apt's python3-torch lives (a pyenv python3 earlier on PATH would not have it).
    static string DebianPython => Environment.GetEnvironmentVariable("ALEXNET_PYTHON") ?? "/usr/bin/python3";

    public static string Script
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tests", "fixtures", "torchvision_fixture.py");
                if (File.Exists(candidate)) return candidate;
            }
            throw new FileNotFoundException($"tests/fixtures/torchvision_fixture.py not found above {AppContext.BaseDirectory}.");
        }
    }

    /// <summary>Runs the script with <paramref name="args"/> and returns its output folder.</summary>
    public static string Run(string outDir, params string[] args)
    {
        Python([Script, .. args, "--out", outDir]);
        return outDir;
    }

    /// <summary>Runs Debian's python3 with <paramref name="args"/> (e.g. "-c", code, ...); fails the test on a non-zero exit.</summary>
    public static void Python(params string[] args)
    {
        var psi = new ProcessStartInfo(DebianPython) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var what = string.Join(' ', args.Select(Path.GetFileName));
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); throw new TimeoutException($"python3 {what}"); }
        Assert.True(p.ExitCode == 0, $"python3 {what} failed (needs apt's python3-torch and python3-torchvision under {DebianPython}):\n" +
                                     $"{stderr.Result}{stdout.Result}");
    }

    /// <summary>A float32 little-endian file written by the script.</summary>
    public static float[] Floats(string path) => MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(path)).ToArray();

    public static JsonElement Json(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement;
}
