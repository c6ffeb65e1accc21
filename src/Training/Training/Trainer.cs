using System.Diagnostics;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Training.Data;
using AlexNet.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AlexNet.Training.Training;

/// <summary>Receives progress; the console shows bars on a terminal and plain lines otherwise.</summary>
public interface ITrainingReport
{
    void Info(string line);
    void Warn(string line);
    void Batch(int epoch, int batch, int batches, double loss, double top1Error, double imagesPerSecond);
    void Epoch(EpochMetrics metrics);
}

/// <summary>
/// The paper's training loop (section 5): SGD with momentum 0.9 and weight decay 0.0005 on cross-entropy, batch 128,
/// lr 0.01 divided by 10 on a plateau of the validation error; validation each epoch on the centre crop;
/// checkpoints `last.ckpt` each epoch and `best.ckpt` on improvement, both atomic.
/// TorchSharp's SGD (as PyTorch's) keeps v' = 0.9 v + (grad + 0.0005 w) and steps w -= lr v'; the paper writes
/// v = 0.9 v - 0.0005 lr w - lr grad, w += v. With a constant lr the two are the same trajectory (v_paper = -lr v');
/// right after a lr drop PyTorch's form applies the new lr to the old momentum too.
/// </summary>
public sealed class Trainer(ITrainingReport report)
{
    public sealed record Data(ImageSet Train, ImageSet Validation, LabelSet Labels, string Name);

    /// <summary>Loads the training and validation images named by the options, prepared at the spec's size.</summary>
    public Data LoadData(TrainOptions o, ImagePreprocessor prep)
    {
        var sw = Stopwatch.StartNew();
        Data data;
        if (o.FashionMnist is { } dir)
        {
            var train = ImageSet.FromIdx(Path.Combine(dir, "train-images-idx3-ubyte.gz"), Path.Combine(dir, "train-labels-idx1-ubyte.gz"),
                prep, LabelSet.FashionMnist, o.Limit);
            var holdout = Math.Min(o.ValidationHoldout, train.Count / 5);
            var (val, rest) = train.Split(holdout, o.Seed);
            data = new Data(rest, val, LabelSet.FashionMnist, "Fashion-MNIST");
        }
        else if (o.Data is { } root)
        {
            void Skip(string file, string why) => report.Warn($"skipped {file}: {why}");
            var train = ImageSet.FromFolder(Path.Combine(root, "train"), prep, Skip);
            if (o.Limit is { } limit && limit < train.Count) train = train.Subset(Enumerable.Range(0, limit).ToArray(), "limit");
            var val = ImageSet.FromFolder(Path.Combine(root, "val"), prep, Skip, train.Classes);
            data = new Data(train, val, train.Classes, $"image folder {root}");
        }
        else throw new ArgumentException("Name the data: --data <root with train/ and val/> or --fashion-mnist <folder>.");
        report.Info($"{data.Name}: {data.Train.Count} training and {data.Validation.Count} validation images, " +
                    $"{data.Labels.Count} classes, prepared at {prep.ResizeSize}x{prep.ResizeSize} in {sw.Elapsed.TotalSeconds:F1} s");
        return data;
    }

    /// <summary>Starts a run from scratch.</summary>
    public TrainState Train(TrainOptions o, CancellationToken ct = default)
    {
        var placement = DevicePlacement.Parse(o.Devices);
        if (placement.Warning is { } w) report.Warn(w);
        var probe = AlexNetSpec.FromPreset(o.Preset, 1);
        var prep = new ImagePreprocessor(probe);
        var data = LoadData(o, prep);
        var spec = AlexNetSpec.FromPreset(o.Preset, data.Labels.Count);
        var stats = data.Train.ChannelStatistics();
        var norm = o.Normalize switch
        {
            "mean" => stats with { Std = [1f, 1f, 1f] },
            "meanstd" => stats,
            _ => throw new ArgumentException($"--normalize must be mean or meanstd, not '{o.Normalize}'."),
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
        if (stepEpochs is { Length: > 0 }) o = o with { Schedule = "step", StepEpochs = stepEpochs };
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

    static SGD NewOptimizer(AlexNetModule model, TrainOptions o) =>
        torch.optim.SGD(model.parameters(), o.LearningRate, momentum: o.Momentum, weight_decay: o.WeightDecay);

    TrainState Run(CheckpointHeader header, AlexNetModule model, SGD optimizer, Data data, CancellationToken ct)
    {
        var o = header.Options;
        Directory.CreateDirectory(o.Output);
        var prep = new ImagePreprocessor(header.Spec);
        var augmenter = new Augmenter(prep, Checkpoint.Pca(header), o.Flips);
        var loader = new BatchLoader(data.Train, augmenter, o.BatchSize, o.Seed);
        var state = header.State;
        var s = header.Spec.InputSize;
        var metricsPath = Path.Combine(o.Output, "metrics.csv");

        for (var epoch = state.Epoch; epoch < o.Epochs; epoch++)
        {
            ct.ThrowIfCancellationRequested();
            foreach (var g in optimizer.ParamGroups) g.LearningRate = state.LearningRate;
            torch.random.manual_seed(Seeds.Mix(o.Seed, epoch, 0xd0));   // dropout masks, reproducible per epoch
            var sw = Stopwatch.StartNew();
            var train = TrainOneEpoch(model, model.DeviceA, optimizer, loader, epoch, s, o.LimitBatches, report,
                "or try --init caffe (the paper's biases of 1 can stall or diverge)", ct);
            var val = Evaluator.Evaluate(new TorchScorer(model), data.Validation, prep, tenCrop: false, o.EvalBatchSize);
            var metrics = new EpochMetrics(epoch + 1, state.LearningRate, train.Loss, train.Top1Error,
                val.Loss, val.Top1Error, val.Top5Error, train.ImagesPerSecond, sw.Elapsed.TotalSeconds);
            state = LrSchedule.AfterEpoch(o, state, epoch, val.Top1Error) with
            {
                History = [.. state.History, metrics],
                TrainSeconds = state.TrainSeconds + sw.Elapsed.TotalSeconds,
            };
            report.Epoch(metrics);
            var current = header with { State = state };
            Checkpoint.Save(Path.Combine(o.Output, "last.ckpt"), current, model, optimizer);
            if (state.BestEpoch == epoch) Checkpoint.Save(Path.Combine(o.Output, "best.ckpt"), current, model, null);
            MetricsCsv.Write(metricsPath, state.History);
        }
        return state;
    }

    /// <summary>What one pass over the training batches measured (running averages, as the batches were seen).</summary>
    public sealed record EpochPass(double Loss, double Top1Error, long Images, double Seconds)
    {
        public double ImagesPerSecond => Images / Seconds;
    }

    /// <summary>
    /// One epoch of SGD in train mode: per batch zero_grad, forward, cross-entropy, backward, step. Any network that
    /// maps pixels (N, 3, S, S) to logits (N, classes) on <paramref name="device"/>; shared with fine-tuning. Seed
    /// torch first for reproducible dropout. A non-finite loss stops the run with <paramref name="divergedHint"/>.
    /// </summary>
    public static EpochPass TrainOneEpoch(nn.Module<Tensor, Tensor> model, Device device, OptimizerHelper optimizer, BatchLoader loader,
        int epoch, int inputSize, int? limitBatches, ITrainingReport report, string divergedHint, CancellationToken ct)
    {
        using var lossFn = nn.CrossEntropyLoss();
        var s = inputSize;
        model.train();
        var sw = Stopwatch.StartNew();
        double lossSum = 0;
        long seen = 0, correct = 0;
        var batches = Math.Min(loader.BatchesPerEpoch, limitBatches ?? int.MaxValue);
        var b = 0;
        foreach (var batch in loader.Epoch(epoch, limitBatches, ct).ToBlockingEnumerable(ct))
        {
            using var scope = NewDisposeScope();
            var x = tensor(batch.Images, [batch.Count, 3, s, s]);
            var y = tensor(batch.Labels).to(device);
            optimizer.zero_grad();
            var logits = model.call(x);                                   // (N, classes)
            var loss = lossFn.call(logits, y);
            loss.backward();
            optimizer.step();
            var l = loss.item<float>();
            if (!float.IsFinite(l))
                throw new InvalidOperationException($"Loss became {l} at epoch {epoch + 1}, batch {b + 1}: lower the learning rate {divergedHint}.");
            lossSum += l * batch.Count;
            correct += logits.argmax(1).eq(y).sum().item<long>();
            seen += batch.Count;
            b++;
            report.Batch(epoch, b, batches, lossSum / seen, 1 - (double)correct / seen, seen / sw.Elapsed.TotalSeconds);
        }
        return new EpochPass(lossSum / seen, 1 - (double)correct / seen, seen, sw.Elapsed.TotalSeconds);
    }
}

public static class MetricsCsv
{
    public const string HeaderLine = "epoch,lr,train_loss,train_top1_error,val_loss,val_top1_error,val_top5_error,img_per_s,seconds";

    public static void Write(string path, IEnumerable<EpochMetrics> history)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var lines = history.Select(m => string.Join(',', new object[]
        {
            m.Epoch, m.Lr, m.TrainLoss, m.TrainTop1Error, m.ValLoss, m.ValTop1Error, m.ValTop5Error, m.ImagesPerSecond, m.Seconds,
        }.Select(v => Convert.ToString(v, inv))));
        AtomicFile.Write(path, s =>
        {
            using var w = new StreamWriter(s, leaveOpen: true);
            w.WriteLine(HeaderLine);
            foreach (var l in lines) w.WriteLine(l);
        });
    }
}
