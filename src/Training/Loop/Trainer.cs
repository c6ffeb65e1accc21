using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Training.Data;
using AlexNet.Training.Evaluation;
using AlexNet.Training.Networks;
using AlexNet.Training.Reporting;
using TorchSharp;
using TorchSharp.Modules;

namespace AlexNet.Training.Loop;

/// <summary>
/// The paper's training from scratch (section 5): SGD with momentum 0.9 and weight decay 0.0005 on cross-entropy,
/// batch 128, lr 0.01 divided by 10 on a plateau of the validation error, through the <see cref="EpochLoop"/>;
/// checkpoints `last.ckpt` each epoch (with the momentum buffers, for resume) and `best.ckpt` on improvement.
/// TorchSharp's SGD (as PyTorch's) keeps v' = 0.9 v + (grad + 0.0005 w) and steps w -= lr v'; the paper writes
/// v = 0.9 v - 0.0005 lr w - lr grad, w += v. With a constant lr the two are the same trajectory (v_paper = -lr v');
/// right after a lr drop PyTorch's form applies the new lr to the old momentum too.
/// </summary>
public sealed class Trainer(ITrainingReport report)
{
    /// <summary>Starts a run from scratch.</summary>
    public TrainState Train(TrainOptions o, CancellationToken ct = default)
    {
        var placement = DevicePlacement.Parse(o.Devices);
        if (placement.Warning is { } w) report.Warn(w);
        var prep = new ImagePreprocessor(AlexNetSpec.FromPreset(o.Preset, 1));
        var data = LoadData(o, prep);
        var spec = AlexNetSpec.FromPreset(o.Preset, data.Labels.Count);
        var stats = data.Train.ChannelStatistics();
        var norm = o.Normalize switch
        {
            NormalizeMode.Mean => stats with { Std = [1f, 1f, 1f] },
            NormalizeMode.MeanStd => stats,
            _ => throw new ArgumentException($"--normalize must be mean or meanstd, not '{o.Normalize.ToString().ToLowerInvariant()}'."),
        };
        var pca = o.PcaLighting ? PcaLighting.FromData(data.Train) : null;
        torch.random.manual_seed(o.Seed);
        var model = new AlexNetModule(spec, norm);
        model.Initialize(o.Init);
        model.Place(placement.A, placement.B);
        var optimizer = NewOptimizer(model, o);
        var header = new CheckpointHeader(o, new TrainState { LearningRate = o.LearningRate }, spec, norm, data.Labels,
            pca?.EigenValues, pca is null ? null : Checkpoint.ToJagged(pca.EigenVectors));
        report.Info($"{spec.Preset} AlexNet, {model.parameters().Sum(p => p.numel()):N0} parameters, {placement}, init {o.Init}");
        return Run(header, model, optimizer, data, ct);
    }

    /// <summary>Continues a run from its last checkpoint: weights, momentum, schedule, epoch and data order.</summary>
    public TrainState Resume(string runDir, int? epochs = null, CancellationToken ct = default, double? learningRate = null,
        int[]? stepEpochs = null)
    {
        var path = Path.Combine(runDir, "last.ckpt");
        if (!File.Exists(path)) throw new FileNotFoundException($"No checkpoint to resume at '{path}'.");
        var saved = Checkpoint.ReadHeader(path);
        var o = saved.Options with { Output = runDir, Epochs = epochs ?? saved.Options.Epochs };
        if (stepEpochs is { Length: > 0 }) o = o with { Schedule = LrScheduleKind.Step, StepEpochs = stepEpochs };
        if (saved.State.Epoch >= o.Epochs)
        {
            // Nothing to do: say so, rather than load the data and stop without a word.
            report.Info($"{runDir} is finished: it has trained {saved.State.Epoch} of {o.Epochs} epochs. To train further, " +
                $"resume with --epochs {saved.State.Epoch + 1} or more.");
            return saved.State;
        }
        var placement = DevicePlacement.Parse(o.Devices);
        if (placement.Warning is { } w) report.Warn(w);
        SGD? optimizer = null;
        var (header, model) = Checkpoint.Load(path, m =>
        {
            m.Place(placement.A, placement.B);
            return optimizer = NewOptimizer(m, o);
        });
        if (learningRate is { } lr) header = header with { State = header.State with { LearningRate = lr } };
        report.Info($"resuming {runDir} at epoch {header.State.Epoch + 1} (lr {header.State.LearningRate:G3})");
        var data = LoadData(o, new ImagePreprocessor(header.Spec));
        return Run(header with { Options = o }, model, optimizer!, data, ct);
    }

    /// <summary>The training and validation images named by the options, prepared at the spec's size.</summary>
    public TrainingData LoadData(TrainOptions o, ImagePreprocessor prep) =>
        TrainingData.Load(o.Data, o.FashionMnist, o.Limit, o.ValidationHoldout, o.Seed, prep, report);

    static SGD NewOptimizer(AlexNetModule model, TrainOptions o) =>
        torch.optim.SGD(model.parameters(), o.LearningRate, momentum: o.Momentum, weight_decay: o.WeightDecay);

    TrainState Run(CheckpointHeader header, AlexNetModule model, SGD optimizer, TrainingData data, CancellationToken ct)
    {
        var o = header.Options;
        var prep = new ImagePreprocessor(header.Spec);
        var loader = new BatchLoader(data.Train, new Augmenter(prep, Checkpoint.Pca(header), o.Flips), o.BatchSize, o.Seed);
        var setup = new EpochLoopSetup(model, model.DeviceA, header.Spec.InputSize, optimizer, [1.0], loader, new TorchScorer(model),
            data.Validation, prep, "or try --init caffe (the paper's biases of 1 can stall or diverge)");
        return EpochLoop.Run(setup, o, header.State, report, (state, _, isBest) =>
        {
            var current = header with { State = state };
            Checkpoint.Save(Path.Combine(o.Output, "last.ckpt"), current, model, optimizer);
            if (isBest) Checkpoint.Save(Path.Combine(o.Output, "best.ckpt"), current, model, null);
        }, ct);
    }
}
