using System.Diagnostics;
using AlexNet.Model.Imaging;
using AlexNet.Training.Data;
using AlexNet.Training.Evaluation;
using AlexNet.Training.Reporting;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AlexNet.Training.Loop;

/// <summary>
/// What the epoch loop trains: any network that maps pixels (N, 3, S, S) in 0..255 to logits (N, classes) on
/// <paramref name="Device"/>, its optimizer with each parameter group's lr as a multiple of the schedule's
/// (<paramref name="LrScales"/>), and the validation set with a scorer of the same network. A non-finite loss stops
/// the run with <paramref name="DivergedHint"/>.
/// </summary>
public sealed record EpochLoopSetup(nn.Module<Tensor, Tensor> Model, Device Device, int InputSize, OptimizerHelper Optimizer,
    IReadOnlyList<double> LrScales, BatchLoader Loader, IScorer Scorer, ImageSet Validation, ImagePreprocessor Prep, string DivergedHint);

/// <summary>What one pass over the training batches measured (running averages, as the batches were seen).</summary>
public sealed record EpochPass(double Loss, double Top1Error, long Images, double Seconds)
{
    public double ImagesPerSecond => Images / Seconds;
}

/// <summary>
/// The one epoch loop of training from scratch and fine-tuning (pytorch/examples <c>imagenet/main.py</c>): train,
/// validate on the centre crop, step the LR schedule, remember the best, save, write metrics.csv. Only what is saved
/// differs (<c>save(state, isBest)</c>): the trainer writes last.ckpt each epoch and best.ckpt, the fine-tuner its best.
/// </summary>
public static class EpochLoop
{
    public static TrainState Run(EpochLoopSetup s, TrainOptions o, TrainState state, ITrainingReport report,
        Action<TrainState, EvalResult, bool> save, CancellationToken ct)
    {
        Directory.CreateDirectory(o.Output);
        for (var epoch = state.Epoch; epoch < o.Epochs; epoch++)
        {
            ct.ThrowIfCancellationRequested();
            foreach (var (group, scale) in s.Optimizer.ParamGroups.Zip(s.LrScales)) group.LearningRate = state.LearningRate * scale;
            torch.random.manual_seed(Seeds.Mix(o.Seed, epoch, 0xd0));   // dropout masks, reproducible per epoch
            var sw = Stopwatch.StartNew();
            var train = TrainOneEpoch(s, epoch, o.LimitBatches, report, ct);                        // loss, img/s
            var val = Evaluator.Evaluate(s.Scorer, s.Validation, s.Prep, tenCrop: false, o.EvalBatchSize);   // loss, acc@1, acc@5
            var metrics = new EpochMetrics(epoch + 1, state.LearningRate, train.Loss, train.Top1Error,
                val.Loss, val.Top1Error, val.Top5Error, train.ImagesPerSecond, sw.Elapsed.TotalSeconds);
            state = LrSchedule.AfterEpoch(o, state, epoch, val.Top1Error) with
            {
                History = [.. state.History, metrics],
                TrainSeconds = state.TrainSeconds + sw.Elapsed.TotalSeconds,
            };
            report.Epoch(metrics);
            var classes = s.Scorer.Classes;
            if (epoch == 0 && classes > 1 && val.Top1Error >= 1 - 1.5 / classes)   // accuracy within half of chance's again
                report.Warn($"After epoch 1 the validation top-1 error is {100 * val.Top1Error:F1}%, about chance " +
                    $"({100 * (1 - 1.0 / classes):F0}% for {classes} classes): the run may not be learning. Check the learning rate " +
                    "and the init (on the compact preset --init Kaiming --normalize meanstd learns; the paper's init often does not).");
            save(state, val, state.BestEpoch == epoch);
            MetricsCsv.Write(Path.Combine(o.Output, "metrics.csv"), state.History);
        }
        return state;
    }

    /// <summary>
    /// One epoch of SGD in train mode: per batch zero_grad, forward, cross-entropy, backward, step. Seed torch first
    /// for reproducible dropout.
    /// </summary>
    static EpochPass TrainOneEpoch(EpochLoopSetup s, int epoch, int? limitBatches, ITrainingReport report, CancellationToken ct)
    {
        using var lossFn = nn.CrossEntropyLoss();
        var (model, optimizer, loader, size) = (s.Model, s.Optimizer, s.Loader, s.InputSize);
        model.train();
        var sw = Stopwatch.StartNew();
        double lossSum = 0;
        long seen = 0, correct = 0;
        var batches = Math.Min(loader.BatchesPerEpoch, limitBatches ?? int.MaxValue);
        var b = 0;
        foreach (var batch in loader.Epoch(epoch, limitBatches, ct).ToBlockingEnumerable(ct))
        {
            using var scope = NewDisposeScope();
            var x = tensor(batch.Images, [batch.Count, 3, size, size]);
            var y = tensor(batch.Labels).to(s.Device);
            optimizer.zero_grad();
            var logits = model.call(x);                                   // (N, classes)
            var loss = lossFn.call(logits, y);
            loss.backward();
            optimizer.step();
            var l = loss.item<float>();
            if (!float.IsFinite(l))
                throw new InvalidOperationException($"Loss became {l} at epoch {epoch + 1}, batch {b + 1}: lower the learning rate {s.DivergedHint}.");
            lossSum += l * batch.Count;
            correct += logits.argmax(1).eq(y).sum().item<long>();
            seen += batch.Count;
            b++;
            report.Batch(epoch, b, batches, lossSum / seen, 1 - (double)correct / seen, seen / sw.Elapsed.TotalSeconds);
        }
        return new EpochPass(lossSum / seen, 1 - (double)correct / seen, seen, sw.Elapsed.TotalSeconds);
    }
}
