using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace AlexNet.Search.Tests;

/// <summary>
/// The scan kernels' AVX2 and scalar paths. A CPU with AVX-512 only ever takes the AVX-512 ones in this process, so
/// tools/KernelCheck (kernels against their scalar twins, four-row against one-row results, the index against brute
/// force) runs in a child process with the runtime's AVX-512 or AVX2 switched off, and must report that it took the
/// slower paths.
/// </summary>
public sealed class KernelPathsTests
{
    [Theory]
    [InlineData("DOTNET_EnableAVX512", false, true)]
    [InlineData("DOTNET_EnableAVX2", false, false)]
    public void KernelsAgreeWithTheirScalarTwinsOnTheSlowerPaths(string switchedOff, bool vector512, bool vector256)
    {
        var (exitCode, output) = RunCheck(switchedOff);
        Assert.True(exitCode == 0, output);
        Assert.Contains($"paths: vector512={vector512} vector256={vector256} ", output);
        Assert.Matches(@"checks: [1-9]\d* passed, 0 failed", output);
        // The dimension-blocked kernels run (and are checked) exactly where the one-query kernels take Vector256.
        Assert.Contains($"segments: {!vector512 && vector256}", output);
    }

    [Fact]
    public void CheckRunsTheFastestPathsWhenNothingIsSwitchedOff()
    {
        var (exitCode, output) = RunCheck(null);
        Assert.True(exitCode == 0, output);
        Assert.Contains($"paths: vector512={Vector512.IsHardwareAccelerated} vector256={Vector256.IsHardwareAccelerated} ", output);
    }

    static (int ExitCode, string Output) RunCheck(string? switchedOff)
    {
        var check = Path.Combine(AppContext.BaseDirectory, "alexnet-kernelcheck.dll");
        Assert.True(File.Exists(check), $"{check} is missing (built through Search.Tests' project reference)");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(check);
        if (switchedOff is not null) start.Environment[switchedOff] = "0";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(2)), "the check did not finish in 2 minutes");
        return (process.ExitCode, output + stderr.Result);
    }
}
