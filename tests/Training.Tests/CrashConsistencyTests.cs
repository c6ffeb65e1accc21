namespace AlexNet.Training.Tests;

/// <summary>SIGKILL in the middle of a checkpoint write or an export leaves the previous file whole.</summary>
public class CrashConsistencyTests
{
    public CrashConsistencyTests() => TorchSetup.Ensure();

    /// <summary>Waits until a temp sibling of <paramref name="path"/> exists (the write is under way), then kills.</summary>
    static bool KillMidWrite(Process p, string path, TimeSpan timeout, Func<bool>? ready = null)
    {
        var dir = Path.GetDirectoryName(path)!;
        var pattern = Path.GetFileName(path) + ".tmp-*";
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline && !p.HasExited)
        {
            if ((ready?.Invoke() ?? true) && Directory.Exists(dir) && Directory.EnumerateFiles(dir, pattern).Any())
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                return true;
            }
            Thread.Sleep(2);
        }
        if (!p.HasExited) p.Kill(true);
        return false;
    }

    [Fact]
    public void KillDuringACheckpointWriteLeavesThePreviousCheckpointLoadableAndResumable()
    {
        using var dir = new TempDir();
        var data = Fixtures.ImageFolder(dir.File("data"), ["a", "b"], trainPerClass: 4, valPerClass: 1, size: 230);
        var run = dir.File("run");
        var last = Path.Combine(run, "last.ckpt");
        // The paper preset: a 490 MB checkpoint (weights and momentum) takes long enough to be caught mid-write.
        using var p = CliTests.Start("train", "--preset", "paper", "--data", data, "--epochs", "3", "--batch-size", "4",
            "--init", "Caffe", "--seed", "1", "--out", run);
        var killed = KillMidWrite(p, last, TimeSpan.FromMinutes(3), ready: () => File.Exists(last));   // epoch 2's write
        Assert.True(killed, "the run ended before its second checkpoint write could be interrupted");
        Assert.NotEmpty(Directory.GetFiles(run, "last.ckpt.tmp-*"));              // it really died mid-write

        var header = Checkpoint.ReadHeader(last);
        Assert.Equal(1, header.State.Epoch);
        var (_, model) = Checkpoint.Load(last);
        model.Dispose();

        var resumed = new Trainer(new ListReport()).Resume(run, epochs: 2);
        Assert.Equal(2, resumed.Epoch);
        Assert.Empty(Directory.GetFiles(run, "last.ckpt.tmp-*"));                 // the next write cleaned up
    }

    [Fact]
    public void KillDuringAnExportLeavesThePreviousModelServable()
    {
        using var dir = new TempDir();
        var path = dir.File("model.onnx");
        var (code, _, err) = CliTests.Run("export", "--preset", "paper", "--seed", "1", "--out", path);
        Assert.True(code == 0, err);
        var before = File.ReadAllBytes(path);

        using var p = CliTests.Start("export", "--preset", "paper", "--seed", "2", "--out", path, "--force");   // replacing it is the point
        Assert.True(KillMidWrite(p, path, TimeSpan.FromMinutes(2)), "the export finished before it could be interrupted");
        Assert.Equal(before, File.ReadAllBytes(path));
        using var session = new InferenceSession(path);
        Assert.Equal(1000, session.OutputMetadata["probabilities"].Dimensions[1]);
    }
}
