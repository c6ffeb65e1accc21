using System.Text.RegularExpressions;

namespace AlexNet.Api.Tests;

/// <summary>
/// The README's commands, as a user meets them (issue 21, "every command in the README run as written"): each command
/// of its ```sh blocks is either run here (the service and its curl examples), by the worker's README test
/// (tests/Training.Tests/ReadmeWorkerCommandTests.cs), or by the named test or container check; a command nobody runs
/// fails <see cref="EveryReadmeCommandIsRunSomewhere"/>. Not run anywhere: Compose v2's `docker compose` spelling
/// (Debian 12 has Compose 1.29, whose `docker-compose` spelling the container checks run) and the GPU profile (no GPU).
/// </summary>
public sealed partial class ReadmeCommandTests : IDisposable
{
    readonly TempDir _dir = new();

    /// <summary>Where each README command runs: a regex over the command and the test (Class.Method, found in tests/)
    /// or check (a file and a fragment it must contain) that runs it.</summary>
    static readonly (string Pattern, string RunBy)[] Coverage =
    [
        (@"^Security__ApiKey=change-me dotnet run --project src/Api$", "ReadmeCommandTests.TheServiceAndItsCurlExamplesRunAsWritten"),
        (@"^curl .*http://localhost:5080/", "ReadmeCommandTests.TheServiceAndItsCurlExamplesRunAsWritten"),
        (@"^\./test\.sh$", ".ci/run|./test.sh"),
        // The Node gRPC client needs the gRPC port, which the curl run leaves off: OipTests runs the same script.
        (@"^\(cd tests/Api\.Tests/OipNode && npm ci\) && node tests/Api\.Tests/OipNode/client\.js ", "OipTests.NodeGrpcClientLoadingTheProtoAtRunTimeGetsTheSameAnswers"),
        (@"^dotnet run --project src/Training -c Release -- ", "ReadmeWorkerCommandTests.TheReadmesWorkerCommandsRunAsWritten"),
        (@"^Inference__ModelPath=\$PWD/models/torchvision-alexnet\.onnx Security__ApiKey=change-me dotnet run --project src/Api$",
            "ReadmeWorkerCommandTests.TheReadmesWorkerCommandsRunAsWritten"),
        // The Model Zoo's own file cannot be downloaded here: a file of its shape, served through the shipped profile.
        (@"^profile=\$PWD/models/profiles/bvlcalexnet\.profile\.json$", "ThirdPartyModelTests.ModelZooStyleFileServesPyTorchsTop5ForAPictureThroughTheShippedProfile"),
        (@"^Inference__ModelPath=\$PWD/bvlcalexnet-12\.onnx Inference__ProfilePath=\$profile dotnet run --project src/Api$",
            "ThirdPartyModelTests.ModelZooStyleFileServesPyTorchsTop5ForAPictureThroughTheShippedProfile"),
        (@"^ALEXNET_API_KEY=change-me docker-compose up -d api$", "tests/Containers/run.sh|up -d api"),
        (@"^docker-compose --profile training run --rm training$", "tests/Containers/run.sh|--profile training run --rm"),
        (@"^ALEXNET_API_KEY=change-me docker-compose --profile gpu up -d api-gpu$", ".ci/static-checks|--profile"),   // config only: no GPU
        (@"^ALEXNET_API_KEY=change-me ALEXNET_MODEL=/models/fashion-mnist-retrained\.onnx docker compose up -d api$", "tests/Containers/run.sh|ALEXNET_MODEL=/models/fashion-mnist-retrained.onnx"),
        (@"^curl -X POST -H 'X-Api-Key: change-me' http://localhost:8080/api/model/reload", "tests/Containers/run.sh|/api/model/reload"),
        // The replica stack: its compose file is validated (config) by .ci/static-checks, and its parts run by the replica
        // tests (PostgreSQL, service processes, HAProxy, without containers); `up --scale` itself is not run here.
        (@"docker compose -f docker-compose\.replicas\.yml up -d --scale api=", ".ci/static-checks|docker-compose -f docker-compose.replicas.yml config"),
        // Compose v2's spelling of the commands above: the plugin is not in Debian 12; the checks run the v1 spelling.
        (@"^(ALEXNET_API_KEY=change-me )?docker compose ", "tests/Containers/run.sh|docker-compose"),
    ];

    internal static string Repo([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", ".."));

    /// <summary>The commands of README.md's ```sh blocks: continuation lines joined, comments dropped.</summary>
    internal static List<string> Commands()
    {
        var commands = new List<string>();
        var inBlock = false;
        var pending = "";
        foreach (var raw in File.ReadAllLines(Path.Combine(Repo(), "README.md")))
        {
            var line = raw.Trim();
            if (line.StartsWith("```", StringComparison.Ordinal)) { inBlock = !inBlock && line == "```sh"; continue; }
            if (!inBlock || line.Length == 0 || line.StartsWith('#')) continue;
            line = TrailingComment().Replace(line, "");
            if (line.EndsWith('\\')) { pending += line[..^1].TrimEnd() + " "; continue; }
            commands.Add(pending + line);
            pending = "";
        }
        return commands;
    }

    [GeneratedRegex(@"\s{2,}#\s.*$")] private static partial Regex TrailingComment();

    [Fact]
    public void EveryReadmeCommandIsRunSomewhere()
    {
        var commands = Commands();
        Assert.True(commands.Count >= 30, $"only {commands.Count} commands found in README.md's sh blocks");
        var sources = string.Join("\n", Directory.EnumerateFiles(Path.Combine(Repo(), "tests"), "*.cs", SearchOption.AllDirectories).Select(File.ReadAllText));
        var uncovered = new List<string>();
        foreach (var command in commands)
        {
            var rule = Coverage.FirstOrDefault(c => Regex.IsMatch(command, c.Pattern));
            if (rule.RunBy is null) { uncovered.Add(command); continue; }
            if (rule.RunBy.Split('|') is [var file, var fragment])
                Assert.True(File.ReadAllText(Path.Combine(Repo(), file)).Contains(fragment, StringComparison.Ordinal), $"{file} does not run '{fragment}' ({command})");
            else
                Assert.True(sources.Contains($" {rule.RunBy.Split('.')[1]}(", StringComparison.Ordinal), $"no test {rule.RunBy} ({command})");
        }
        Assert.True(uncovered.Count == 0, "README commands no test runs:\n" + string.Join("\n", uncovered));
    }

    /// <summary>The README's run command (its settings, the bundled model and samples) and then every curl example of
    /// "The service", in order, from the repository's root, with the README's localhost:5080 pointed at this run's port.
    /// Each must answer without a problem (curl prints the body; a refusal is problem+json).</summary>
    [Fact]
    public async Task TheServiceAndItsCurlExamplesRunAsWritten()
    {
        var curls = Commands().Where(c => c.StartsWith("curl ", StringComparison.Ordinal) && c.Contains("localhost:5080", StringComparison.Ordinal)).ToList();
        Assert.True(curls.Count >= 10, $"{curls.Count} curl examples");
        using var service = await ServiceProcess.StartAsync(Path.Combine(Repo(), "models", "fashion-mnist-compact.onnx"), _dir.File("gallery.db"),
            new Dictionary<string, string>
            {
                ["Security__ApiKey"] = "change-me", ["Samples__Path"] = Path.Combine(Repo(), "models", "samples"),
                // "Several models by name" asks for a model named other.
                ["Models__0__Name"] = "other", ["Models__0__Path"] = Path.Combine(Repo(), "models", "fashion-mnist-compact.onnx"),
            });
        foreach (var curl in curls)
        {
            var command = curl.Replace("http://localhost:5080", service.Address.ToString().TrimEnd('/'), StringComparison.Ordinal);
            var psi = new ProcessStartInfo("bash", ["-c", command]) { WorkingDirectory = Repo(), RedirectStandardOutput = true, RedirectStandardError = true };
            using var p = Process.Start(psi)!;
            var stdout = await p.StandardOutput.ReadToEndAsync();
            var stderr = await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, $"{curl}\nexit {p.ExitCode}: {stderr}");
            Assert.False(stdout.Contains("rfc9110", StringComparison.Ordinal) || stdout.Contains("\"status\":4", StringComparison.Ordinal)
                || stdout.Contains("\"status\":5", StringComparison.Ordinal), $"{curl}\nanswered a problem: {stdout}");
            Assert.True(stdout.Length > 0 || curl.Contains("-X DELETE", StringComparison.Ordinal), $"{curl}\nanswered nothing");
        }
    }

    public void Dispose() => _dir.Dispose();
}
