using System.Diagnostics;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Training.Data;
using AlexNet.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AlexNet.Training.Training;

/// <summary>
/// How to fine-tune. The defaults are the usual transfer-learning recipe rather than the paper's from-scratch one:
/// the new last layer at lr 0.001 (PyTorch's transfer-learning tutorial), the pretrained layers ten times slower, SGD
/// with momentum 0.9 and weight decay 5e-4, lr / 10 when validation error stops improving, random crops and flips
/// without PCA lighting. The last layer's step grows with the squared norm of the fc7 features it reads, so a net
/// with larger features needs a smaller --lr (a loss far above ln(classes) after the first epoch says so).
/// </summary>
public sealed record FineTuneOptions
{
    /// <summary>What to start from: one of our checkpoints (.ckpt, any preset) or torchvision AlexNet weights saved
    /// by <c>torch.save(model.state_dict(), path)</c>. Told apart by content, not by name.</summary>
    public string From { get; init; } = "";
    /// <summary>Image-folder root with train/ and val/ (each &lt;class&gt;/&lt;image&gt;): its classes are the new ones.</summary>
    public string Data { get; init; } = "";
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 32;
    /// <summary>Learning rate of the new last layer.</summary>
    public double LearningRate { get; init; } = 0.001;
    /// <summary>The pretrained layers learn at LearningRate times this (0.1: ten times slower).</summary>
    public double PretrainedLrScale { get; init; } = 0.1;
    /// <summary>Train the new last layer only; every pretrained weight stays as loaded.</summary>
    public bool Freeze { get; init; }
    public double Momentum { get; init; } = 0.9;
    public double WeightDecay { get; init; } = 0.0005;
    public int Patience { get; init; } = 2;
    public bool Flips { get; init; } = true;
    public string Devices { get; init; } = "cpu";
    public int Seed { get; init; } = 42;
    public string Output { get; init; } = "runs/finetune";
    /// <summary>Use only the first N training images (smoke runs).</summary>
    public int? Limit { get; init; }
    public int? LimitBatches { get; init; }
    public int EvalBatchSize { get; init; } = 64;

    /// <summary>The same settings as trainer options: data loading, the schedule and the checkpoint header use them.</summary>
    public TrainOptions AsTrainOptions(string preset) => new()
    {
        Preset = preset, Data = Data, Limit = Limit, Epochs = Epochs, BatchSize = BatchSize, LearningRate = LearningRate,
        Momentum = Momentum, WeightDecay = WeightDecay, Schedule = "plateau", Patience = Patience, PcaLighting = false,
        Flips = Flips, Devices = Devices, Seed = Seed, Output = Output, LimitBatches = LimitBatches, EvalBatchSize = EvalBatchSize,
        Normalize = "pretrained",   // the source model's normalisation is kept: its features expect it
    };
}

/// <summary>Validation before fine-tuning (new last layer untrained) and at the best epoch, and where the best is.</summary>
public sealed record FineTuneResult(EvalResult Before, EvalResult Best, TrainState State, string BestWeights, LabelSet Labels,
    string Preset, string Recipe);

/// <summary>
/// Fine-tunes a pretrained AlexNet (<see cref="PretrainedNet"/>) on an image folder: replaces the last layer for the
/// folder's classes, then trains with the trainer's epoch loop (<see cref="Trainer.TrainOneEpoch"/>), the shared
/// evaluator and LR schedule. Writes best.ckpt (two-tower) or best.pth + labels.txt (torchvision) and metrics.csv.
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
        var scorer = new ModuleScorer(net.Module, net.InputSize, net.Classes);
        var before = Evaluator.Evaluate(scorer, data.Validation, prep, tenCrop: false, o.EvalBatchSize);
        report.Info($"before fine-tuning: val top-1 error {100 * before.Top1Error:F2}%, top-5 error {100 * before.Top5Error:F2}%");

        var state = new TrainState { LearningRate = o.LearningRate };
        var best = before;
        var bestPath = "";
        for (var epoch = 0; epoch < o.Epochs; epoch++)
        {
            ct.ThrowIfCancellationRequested();
            foreach (var (group, scale) in optimizer.ParamGroups.Zip(scales)) group.LearningRate = state.LearningRate * scale;
            torch.random.manual_seed(Seeds.Mix(o.Seed, epoch, 0xd0));   // dropout masks, reproducible per epoch
            var sw = Stopwatch.StartNew();
            var train = Trainer.TrainOneEpoch(net.Module, net.Device, optimizer, loader, epoch, net.InputSize, o.LimitBatches, report,
                "(--lr, --pretrained-lr-scale) or use --freeze", ct);
            var val = Evaluator.Evaluate(scorer, data.Validation, prep, tenCrop: false, o.EvalBatchSize);
            var metrics = new EpochMetrics(epoch + 1, state.LearningRate, train.Loss, train.Top1Error,
                val.Loss, val.Top1Error, val.Top5Error, train.ImagesPerSecond, sw.Elapsed.TotalSeconds);
            state = LrSchedule.AfterEpoch(t, state, epoch, val.Top1Error) with
            {
                History = [.. state.History, metrics],
                TrainSeconds = state.TrainSeconds + sw.Elapsed.TotalSeconds,
            };
            report.Epoch(metrics);
            if (state.BestEpoch == epoch)
            {
                bestPath = net.SaveBest(o.Output, t, state, data.Labels);
                best = val;
            }
            MetricsCsv.Write(Path.Combine(o.Output, "metrics.csv"), state.History);
        }
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
        PretrainedNet.ExportBest(r.BestWeights, r.Labels, provenance, onnxPath);
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
