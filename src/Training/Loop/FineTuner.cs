using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Training.Data;
using AlexNet.Training.Evaluation;
using AlexNet.Training.Export;
using AlexNet.Training.Networks;
using AlexNet.Training.Reporting;
using TorchSharp;
using TorchSharp.Modules;

namespace AlexNet.Training.Loop;

/// <summary>Validation before fine-tuning (new last layer untrained) and at the best epoch, and where the best is.</summary>
public sealed record FineTuneResult(EvalResult Before, EvalResult Best, TrainState State, string BestWeights, LabelSet Labels,
    string Preset, string Recipe);

/// <summary>
/// Fine-tunes a pretrained AlexNet (<see cref="PretrainedNet"/>) on an image folder: replaces the last layer for the
/// folder's classes, then trains with the <see cref="EpochLoop"/> of training from scratch. Writes best.ckpt
/// (two-tower) or best.pth + labels.txt (torchvision) and metrics.csv.
/// </summary>
public sealed class FineTuner(ITrainingReport report)
{
    public FineTuneResult Run(FineTuneOptions o, CancellationToken ct = default)
    {
        if (string.IsNullOrWhiteSpace(o.Data)) throw new ArgumentException("Name the data: --data <root with train/ and val/>.");
        if (o.PretrainedLrScale is < 0 or > 1) throw new ArgumentException($"--pretrained-lr-scale must be within 0..1, not {o.PretrainedLrScale}.");
        var placement = DevicePlacement.Parse(o.Devices);
        if (placement.Warning is { } w) report.Warn(w);
        var (preset, inputSize, resizeSize) = PretrainedNet.Probe(o.From);
        var prep = new ImagePreprocessor(resizeSize, inputSize);
        var t = o.AsTrainOptions(preset);
        var data = new Trainer(report).LoadData(t, prep);

        torch.random.manual_seed(o.Seed);                              // the new last layer's weights
        using var net = PretrainedNet.Open(o.From, data.Labels.Count, placement);
        var (optimizer, scales, recipe) = NewOptimizer(net, o);   // scales: each group's lr over the last layer's
        using var ownsMomentum = optimizer;
        report.Info($"fine-tuning {preset} AlexNet from {o.From}: new last layer of {net.Classes} classes, {recipe}");

        Directory.CreateDirectory(o.Output);
        var loader = new BatchLoader(data.Train, new Augmenter(prep, null, o.Flips), o.BatchSize, o.Seed);
        var scorer = new TorchScorer(net.Module, net.InputSize, net.Classes);
        var before = Evaluator.Evaluate(scorer, data.Validation, prep, tenCrop: false, o.EvalBatchSize);
        report.Info($"before fine-tuning: val top-1 error {100 * before.Top1Error:F2}%, top-5 error {100 * before.Top5Error:F2}%");

        var best = before;
        var bestPath = "";
        var setup = new EpochLoopSetup(net.Module, net.Device, net.InputSize, optimizer, scales, loader, scorer, data.Validation, prep,
            "(--lr, --pretrained-lr-scale) or use --freeze");
        var state = EpochLoop.Run(setup, t, new TrainState { LearningRate = o.LearningRate }, report, (now, val, isBest) =>
        {
            if (!isBest) return;
            bestPath = net.SaveBest(o.Output, t, now, data.Labels);
            best = val;
        }, ct);
        if (bestPath == "") throw new ArgumentException("--epochs must be at least 1.");
        report.Info($"best val top-1 error {100 * best.Top1Error:F2}% (was {100 * before.Top1Error:F2}%) at epoch {state.BestEpoch + 1}; " +
                    $"weights in {Path.GetFullPath(bestPath)}");
        return new FineTuneResult(before, best, state, bestPath, data.Labels, preset, recipe);
    }

    /// <summary>Exports the best weights of a fine-tuning run, with where they came from in the provenance.</summary>
    public static void Export(FineTuneOptions o, FineTuneResult r, string onnxPath)
    {
        var provenance = new Provenance
        {
            Dataset = $"image folder {o.Data}",
            Epochs = r.State.Epoch,
            Init = $"fine-tuned from {Path.GetFileName(o.From)} ({r.Preset})",
            Command = Environment.CommandLine,
            Metrics = new()
            {
                ["val_top1_error"] = r.Best.Top1Error, ["val_top5_error"] = r.Best.Top5Error,
                ["val_top1_error_before"] = r.Before.Top1Error, ["val_top5_error_before"] = r.Before.Top5Error,
            },
            Note = $"{r.Recipe}; best epoch {r.State.BestEpoch + 1} of {r.State.Epoch}",
        };
        ModelExport.ExportBest(r.BestWeights, r.Labels, provenance, onnxPath);
    }

    /// <summary>
    /// SGD over two groups: the new last layer at lr and the pretrained layers at lr x scale; with --freeze only the
    /// last layer, and the pretrained parameters stop requiring gradients (backward then stops at the last layer).
    /// </summary>
    public static (SGD Optimizer, double[] Scales, string Recipe) NewOptimizer(PretrainedNet net, FineTuneOptions o)
    {
        var groups = new List<SGD.ParamGroup> { new(net.LastLayer.parameters(), lr: o.LearningRate, momentum: o.Momentum, weight_decay: o.WeightDecay) };
        var scales = new List<double> { 1 };
        if (o.Freeze)
            foreach (var p in net.PretrainedParameters) p.requires_grad = false;
        else
        {
            groups.Add(new(net.PretrainedParameters, lr: o.LearningRate * o.PretrainedLrScale, momentum: o.Momentum, weight_decay: o.WeightDecay));
            scales.Add(o.PretrainedLrScale);
        }
        var optimizer = torch.optim.SGD(groups, o.LearningRate, momentum: o.Momentum, weight_decay: o.WeightDecay);
        var recipe = o.Freeze ? $"last layer only (--freeze) at lr {o.LearningRate:G3}"
            : $"last layer at lr {o.LearningRate:G3}, pretrained layers at lr {o.LearningRate * o.PretrainedLrScale:G3}";
        return (optimizer, [.. scales], recipe);
    }
}
