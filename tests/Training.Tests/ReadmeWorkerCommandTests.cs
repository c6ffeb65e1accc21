using System.Net.Http.Json;
using System.Text.Json;

namespace AlexNet.Training.Tests;

/// <summary>
/// The README's worker commands (Training, Bring your own weights) run as written, in order, from a folder laid out
/// like a clone: <c>my-images/{train,val}/&lt;class&gt;</c> made here, <c>alexnet.pth</c> written by Debian's PyTorch
/// (tests/fixtures/torchvision_fixture.py) and <c>models/profiles/imagenet1k-synsets.txt</c> from the repository. Only
/// the training commands get a smoke-run suffix (<c>--limit</c>, <c>--batch-size</c>, one epoch of the paper preset) so
/// the whole walk takes a minute or two on two cores; the rest are the README's arguments exactly. The imported model
/// is then served as README step 2 says and asked about a photo. (tests/Api.Tests/ReadmeCommandTests.cs checks that
/// every README command is run by this test or another.)
/// </summary>
public sealed class ReadmeWorkerCommandTests
{
    public ReadmeWorkerCommandTests() => TorchSetup.Ensure();

    static string Repo([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", ".."));

    /// <summary>What a smoke run adds to a README training command (the README's own arguments come first, unchanged).</summary>
    static readonly Dictionary<string, string[]> SmokeSuffix = new()
    {
        ["train"] = ["--limit", "4", "--batch-size", "2", "--epochs", "1"],
        ["finetune"] = ["--limit", "4", "--batch-size", "2"],
    };

    [Fact]
    public async Task TheReadmesWorkerCommandsRunAsWritten()
    {
        using var dir = new TempDir();
        var clone = Directory.CreateDirectory(dir.File("clone")).FullName;
        Fixtures.ImageFolder(Path.Combine(clone, "my-images"), ["cats", "dogs"], trainPerClass: 3, valPerClass: 2, size: 64);
        var fx = PyTorchFixture.Run(dir.File("fixture"), "state-dict", "--seed", "7", "--init", "kaiming", "--batch", "1");
        File.Copy(Path.Combine(fx, "alexnet.pth"), Path.Combine(clone, "alexnet.pth"));
        Directory.CreateDirectory(Path.Combine(clone, "models", "profiles"));
        File.Copy(Path.Combine(Repo(), "models", "profiles", "imagenet1k-synsets.txt"), Path.Combine(clone, "models", "profiles", "imagenet1k-synsets.txt"));

        const string prefix = "dotnet run --project src/Training -c Release -- ";
        var readme = File.ReadAllText(Path.Combine(Repo(), "README.md")).Replace("\\\n", " ");
        var commands = readme.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith(prefix, StringComparison.Ordinal))
            .Select(l => System.Text.RegularExpressions.Regex.Replace(l[prefix.Length..], @"\s+", " ").Trim()).ToList();
        Assert.True(commands.Count >= 8, string.Join("\n", commands));
        foreach (var command in commands)
        {
            var args = command.Split(' ');
            var (code, stdout, stderr) = Run(clone, [.. args, .. SmokeSuffix.GetValueOrDefault(args[0], [])]);
            Assert.True(code == 0, $"{command}\nexit {code}\n{stderr}\n{stdout}");
        }
        foreach (var file in new[] { "runs/mine/best.ckpt", "runs/mine/curves.png", "models/mine.onnx", "models/torchvision-alexnet.onnx",
            "models/mine-finetuned.onnx" })
            Assert.True(File.Exists(Path.Combine(clone, file)), $"{file} was not written");

        // 2. serve it; 3. ask it (a photo).
        await using var server = new ApiFactory(Path.Combine(clone, "models", "torchvision-alexnet.onnx"), dir.File("gallery.db"));
        var client = await server.ReadyClientAsync();
        using var form = new MultipartFormDataContent
        {
            { new ByteArrayContent(File.ReadAllBytes(Path.Combine(Repo(), "tests", "Model.Tests", "Fixtures", "china.jpg"))), "image", "china.jpg" },
        };
        using var response = await client.PostAsync("/api/classify?k=5", form);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        var answer = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(5, answer.GetProperty("results")[0].GetProperty("top").GetArrayLength());
        var model = await client.GetFromJsonAsync<JsonElement>("/api/model");
        Assert.Contains("ImageNet", model.GetProperty("domain").GetString());
    }

    static (int Code, string Out, string Err) Run(string workingDirectory, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "alexnet-train.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5))) { p.Kill(true); throw new TimeoutException($"alexnet-train {string.Join(' ', args)}"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
