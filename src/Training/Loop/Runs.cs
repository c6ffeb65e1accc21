using AlexNet.Training.Export;
using AlexNet.Training.Reporting;
using AlexNet.Training.Runtime;

namespace AlexNet.Training.Loop;

/// <summary>What resume continues: the run folder (its last.ckpt), optionally with a new total of epochs, a new lr from
/// here on, or a switch to a step schedule at <paramref name="StepEpochs"/>.</summary>
public sealed record ResumeRequest(string Run, int? Epochs, double? LearningRate, int[]? StepEpochs);

/// <summary>
/// The train, resume and finetune commands' work, on the console: refuse wrong convolution kernels, run under the
/// progress display, then draw the run's pictures or export.
/// </summary>
public static class Runs
{
    public static void Train(TrainOptions o, string? exportTo)
    {
        var report = new ConsoleReport();
        TorchRuntime.CheckConvolutions();   // refuse to train on wrong kernels (docs/torchsharp.md)
        var state = report.Run(() => new Trainer(report).Train(o));
        Finish(report, o.Output, state);
        if (exportTo is { } path) ModelExport.FromCheckpoint(Path.Combine(o.Output, "best.ckpt"), path, report);
    }

    public static void Resume(ResumeRequest q)
    {
        var report = new ConsoleReport();
        TorchRuntime.CheckConvolutions();
        var state = report.Run(() => new Trainer(report).Resume(q.Run, q.Epochs, default, q.LearningRate, q.StepEpochs));
        Finish(report, q.Run, state);
    }

    public static void FineTune(FineTuneOptions o, string? exportTo)
    {
        var report = new ConsoleReport();
        TorchRuntime.CheckConvolutions();
        var result = report.Run(() => new FineTuner(report).Run(o));
        if (exportTo is not { } path) return;
        FineTuner.Export(o, result, path);
        ModelExport.Wrote(path, report);
    }

    static void Finish(ITrainingReport report, string dir, TrainState state)
    {
        report.Info($"best val top-1 error {100 * state.BestTop1Error:F2}% at epoch {state.BestEpoch + 1}; checkpoints in {Path.GetFullPath(dir)}");
        Pictures.DrawRun(dir, report);
    }
}
