using static TorchSharp.torch;

namespace AlexNet.Training.Tests;

public class CliTests
{
    public CliTests() => TorchSetup.Ensure();

    static string Cli => Path.Combine(AppContext.BaseDirectory, "alexnet-train.dll");

    internal static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Cli);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        using var p = Start(args);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3))) { p.Kill(true); throw new TimeoutException($"alexnet-train {string.Join(' ', args)}"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    static string[] TinyTrain(string data, string run, int epochs) =>
        ["train", "--preset", "compact", "--data", data, "--epochs", $"{epochs}", "--batch-size", "8", "--init", "Kaiming",
         "--normalize", "meanstd", "--seed", "3", "--out", run];

    [Fact]
    public void HelpListsEveryCommand()
    {
        var (code, stdout, _) = Run("--help");
        Assert.Equal(0, code);
        foreach (var c in new[] { "train", "resume", "evaluate", "export", "plot" }) Assert.Contains(c, stdout);
        var (trainCode, trainHelp, _) = Run("train", "--help");
        Assert.Equal(0, trainCode);
        Assert.Contains("--devices", trainHelp);
        Assert.Contains("the paper: 0.0005", trainHelp);
    }

    [Fact]
    public void TheDefaultInitAndNormalisationDependOnThePresetAndAStalledRunIsFlagged()
    {
        using var dir = new TempDir();
        var data = Fixtures.ImageFolder(dir.File("data"), ["cats", "dogs", "owls"], trainPerClass: 4, valPerClass: 2);
        // No --init, no --normalize: the compact preset trains with Kaiming and meanstd (the paper's init stalls there).
        var (code, stdout, stderr) = Run("train", "--preset", "compact", "--data", data, "--epochs", "1", "--batch-size", "8",
            "--seed", "3", "--out", dir.File("run"));
        Assert.True(code == 0, stderr + stdout);
        var header = Checkpoint.ReadHeader(dir.File("run/last.ckpt"));
        Assert.Equal((InitScheme.Kaiming, NormalizeMode.MeanStd), (header.Options.Init, header.Options.Normalize));
        var (_, help, _) = Run("train", "--help");
        Assert.Contains("Default: Paper for the paper preset, Kaiming for compact", help);
        Assert.Equal((InitScheme.Paper, NormalizeMode.Mean), (Commands.TrainCommand.DefaultInit("paper"), Commands.TrainCommand.DefaultNormalize("paper")));

        // lr 0 cannot learn: after its first epoch the run says it is at chance.
        var (stalledCode, stalledOut, stalledErr) = Run("train", "--preset", "compact", "--data", data, "--epochs", "1", "--batch-size", "8",
            "--lr", "0", "--seed", "3", "--out", dir.File("stalled"));
        Assert.True(stalledCode == 0, stalledErr + stalledOut);
        Assert.Contains("about chance", stalledOut + stalledErr);
    }

    [Fact]
    public void NothingIsOverwrittenUnlessForced()
    {
        using var dir = new TempDir();
        var onnx = dir.File("model.onnx");
        string[] export = ["export", "--preset", "compact", "--classes", "3", "--out", onnx];
        Assert.Equal(0, Run(export).Code);
        var first = File.ReadAllBytes(onnx);
        var (code, stdout, stderr) = Run([.. export, "--seed", "7"]);
        Assert.Equal(2, code);
        Assert.Contains("already exists", stderr + stdout);
        Assert.Contains("--force", stderr + stdout);
        Assert.Equal(first, File.ReadAllBytes(onnx));                                   // untouched
        Assert.Equal(0, Run([.. export, "--seed", "7", "--force"]).Code);
        Assert.NotEqual(first, File.ReadAllBytes(onnx));

        var data = Fixtures.ImageFolder(dir.File("data"), ["cats", "dogs"], trainPerClass: 4, valPerClass: 2);
        Assert.Equal(0, Run(TinyTrain(data, dir.File("run"), 1)).Code);
        var again = Run(TinyTrain(data, dir.File("run"), 1));
        Assert.Equal(2, again.Code);
        Assert.Contains("holds a run", again.Err + again.Out);
        Assert.Equal(0, Run([.. TinyTrain(data, dir.File("run"), 1), "--force"]).Code);
    }

    [Fact]
    public void OneEpochOnATinyFolderThenExportGivesAModelThatOnnxRuntimeLoads()
    {
        using var dir = new TempDir();
        var data = Fixtures.ImageFolder(dir.File("data"), ["cats", "dogs", "owls"], trainPerClass: 6, valPerClass: 2);
        var model = dir.File("exported/model.onnx");
        var (code, stdout, stderr) = Run([.. TinyTrain(data, dir.File("run"), 1), "--export", model]);
        Assert.True(code == 0, stderr + stdout);
        Assert.Equal(Path.GetFullPath(model), stdout.Trim().Split('\n')[^1].Trim());
        Assert.Contains("broken.jpg", stderr + stdout);                 // the unreadable file is named, and skipped
        Assert.True(File.Exists(dir.File("run/curves.png")) && File.Exists(dir.File("run/conv1.png")));
        Assert.Equal(2, File.ReadAllLines(dir.File("run/metrics.csv")).Length);

        using var session = new InferenceSession(model);
        Assert.Equal(["cats", "dogs", "owls"], System.Text.Json.JsonSerializer.Deserialize<string[]>(
            session.ModelMetadata.CustomMetadataMap[OnnxContract.Keys.Labels])!);
        Assert.Equal(3, session.OutputMetadata[OnnxContract.Probabilities].Dimensions[1]);
        // Export fitted the out-of-domain statistics on the run's own validation images (6 here: 3 fit, 3 calibrate).
        var ood = AlexNet.Model.OutOfDomain.DomainStatistics.FromJson(session.ModelMetadata.CustomMetadataMap[AlexNet.Model.OutOfDomain.DomainStatistics.MetadataKey]);
        Assert.Equal((3, 3), (ood.FitImages, ood.CalibrationImages));
        Assert.Equal(ood.Dim, session.OutputMetadata[AlexNet.Model.OutOfDomain.DomainStatisticsGraph.Output].Dimensions[1]);

        var (evalCode, evalOut, evalErr) = Run("evaluate", "--model", model, "--data", Path.Combine(data, "val"), "--ten-crop");
        Assert.True(evalCode == 0, evalErr);
        Assert.Contains("centre   images 6", evalOut);
        Assert.Contains("10-crop  images 6", evalOut);
        // Progress like train's (plain lines when not on a terminal), on stderr so that stdout stays the result.
        Assert.Matches(@"\d\d:\d\d:\d\d centre top-1 err [0-9.]+% [0-9]+ img/s \[6/6\]", evalErr);
        Assert.Matches(@"\d\d:\d\d:\d\d 10-crop top-1 err [0-9.]+% [0-9]+ img/s \[6/6\]", evalErr);
        Assert.DoesNotContain("img/s", evalOut);
    }

    [Fact]
    public void ExportOfFreshWeightsPrintsWhereItWrote()
    {
        using var dir = new TempDir();
        var (code, stdout, stderr) = Run("export", "--preset", "compact", "--classes", "3", "--out", dir.File("fresh.onnx"));
        Assert.True(code == 0, stderr);
        Assert.Equal(dir.File("fresh.onnx"), stdout.Trim().Split('\n')[^1].Trim());
        using var session = new InferenceSession(dir.File("fresh.onnx"));
        Assert.Equal(AlexNetSpec.Compact(3).FeatureDim, session.OutputMetadata[OnnxContract.Features].Dimensions[1]);
    }

    [Fact]
    public void MissingDataIsAOneLineErrorNotACrash()
    {
        var (code, _, stderr) = Run("train", "--preset", "compact", "--data", "/nonexistent/data", "--epochs", "1");
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", stderr.Trim());
        Assert.Contains("/nonexistent/data", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void AKilledRunResumesFromItsLastCheckpointAndEndsWhereAnUninterruptedRunEnds()
    {
        using var dir = new TempDir();
        var data = Fixtures.ImageFolder(dir.File("data"), ["a", "b"], trainPerClass: 8, valPerClass: 2);
        var run = dir.File("killed");
        using (var p = Start(TinyTrain(data, run, 500)))
        {
            var last = Path.Combine(run, "last.ckpt");
            var deadline = DateTime.UtcNow.AddMinutes(2);
            while (DateTime.UtcNow < deadline && !(File.Exists(last) && SafeEpoch(last) >= 2)) Thread.Sleep(50);
            p.Kill(entireProcessTree: true);                            // SIGKILL, wherever it is (maybe mid-write)
            p.WaitForExit();
        }
        var header = Checkpoint.ReadHeader(Path.Combine(run, "last.ckpt"));   // intact, whatever the kill interrupted
        var reached = header.State.Epoch;
        Assert.InRange(reached, 2, 499);

        var report = new ListReport();
        var resumed = new Trainer(report).Resume(run, epochs: reached + 1);
        Assert.Equal(reached + 1, resumed.Epoch);
        Assert.Contains(report.Lines, l => l.Contains($"resuming {run} at epoch {reached + 1}"));

        var o = header.Options with { Output = dir.File("straight"), Epochs = reached + 1 };
        var straight = new Trainer(report).Train(o);
        Assert.Equal(straight.History.Select(h => Math.Round(h.TrainLoss, 4)), resumed.History.Select(h => Math.Round(h.TrainLoss, 4)));
        var (_, a) = Checkpoint.Load(Path.Combine(run, "last.ckpt"));
        var (_, b) = Checkpoint.Load(dir.File("straight/last.ckpt"));
        var sb = b.state_dict();
        foreach (var (k, v) in a.state_dict()) Assert.True(v.allclose(sb[k], rtol: 1e-4, atol: 1e-6), $"{k} differs");
    }

    static int SafeEpoch(string path)
    {
        try { return Checkpoint.ReadHeader(path).State.Epoch; }
        catch (IOException) { return 0; }
    }
}
