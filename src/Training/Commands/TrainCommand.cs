using AlexNet.Model;
using AlexNet.Training.Loop;
using AlexNet.Training.Networks;

namespace AlexNet.Training.Commands;

/// <summary><c>train</c>: the options of <see cref="TrainOptions"/> (defaults: the paper's recipe), then <see cref="Runs.Train"/>.</summary>
public sealed class TrainCommand : VerbCommand
{
    public TrainCommand() : base("train", "Train from scratch with the paper's recipe.")
    {
        var d = new TrainOptions();
        var preset = Opt("--preset", $"Network size: {string.Join(", ", AlexNetSpec.PresetNames)}.", d.Preset);
        preset.AcceptOnlyFromAmong([.. AlexNetSpec.PresetNames]);
        var data = Opt<string>("--data", "Image-folder root holding train/<class>/* and val/<class>/*.");
        var fashion = Opt<string>("--fashion-mnist", "Folder of Fashion-MNIST's gzipped IDX files (Debian: /usr/share/datasets/fashion-mnist).");
        var epochs = Opt("--epochs", "Epochs to train (the paper: about 90).", d.Epochs);
        var batch = Opt("--batch-size", "Images per SGD step (the paper: 128).", d.BatchSize);
        var lr = Opt("--lr", "Initial learning rate (the paper: 0.01).", d.LearningRate);
        var momentum = Opt("--momentum", "SGD momentum (the paper: 0.9).", d.Momentum);
        var wd = Opt("--weight-decay", "L2 weight decay (the paper: 0.0005).", d.WeightDecay);
        var schedule = Opt("--schedule", "plateau: lr / 10 when val error stops improving; step: at --step-epochs.", CliName(d.Schedule));
        schedule.AcceptOnlyFromAmong(CliName(LrScheduleKind.Plateau), CliName(LrScheduleKind.Step));
        var patience = Opt("--patience", "Epochs without improvement before lr / 10 (plateau).", d.Patience);
        var maxDrops = Opt("--max-lr-drops", "How many times lr may be divided by 10 (the paper: 3).", d.MaxLrDrops);
        var steps = new Option<int[]>("--step-epochs") { Description = "Epochs after which lr / 10 (step).", DefaultValueFactory = _ => d.StepEpochs, AllowMultipleArgumentsPerToken = true };
        var init = Opt<InitScheme?>("--init", "Initialisation: Paper (N(0,0.01), biases 1), Caffe (biases 0.1, fc6/7 std 0.005) or " +
            "Kaiming. Default: Paper for the paper preset, Kaiming for compact (the paper's init stays at chance there in short runs).");
        var normalize = Opt<string>("--normalize", "mean: subtract training-set channel means (the paper); meanstd: also divide by std. " +
            "Default: mean for the paper preset, meanstd for compact (the demo model's recipe).");
        normalize.AcceptOnlyFromAmong(CliName(NormalizeMode.Mean), CliName(NormalizeMode.MeanStd));
        var noPca = Opt("--no-pca", "Turn PCA lighting off.", false);
        var noFlip = Opt("--no-flip", "Turn horizontal flips off.", false);
        var devices = Opt("--devices", "Tower placement: cpu, cuda:0, or cuda:0,cuda:1 (tower a, tower b).", d.Devices);
        var seed = Opt("--seed", "Seed of every random choice (init, data order, augmentation, dropout).", d.Seed);
        var output = Opt("--out", "Run folder: checkpoints, metrics.csv, pictures.", d.Output);
        var (limit, limitBatches) = SmokeRunOptions();
        var holdout = Opt("--val-holdout", "Training images held out for validation (Fashion-MNIST has no val split).", d.ValidationHoldout);
        var exportTo = Opt<string>("--export", "After training, export best.ckpt to this .onnx path.");
        var force = ForceOpt();
        AddOptions(
            preset, data, fashion, epochs, batch, lr, momentum, wd, schedule, patience, maxDrops, steps, init, normalize,
            noPca, noFlip, devices, seed, output, limit, limitBatches, holdout, exportTo, force);

        SetAction(r =>
        {
            RefuseOverwrite(r.GetValue(output), r.GetValue(force), runFolder: true);
            RefuseOverwrite(r.GetValue(exportTo), r.GetValue(force));
            var o = new TrainOptions
            {
                Preset = r.GetValue(preset)!, Data = r.GetValue(data), FashionMnist = r.GetValue(fashion), Epochs = r.GetValue(epochs),
                BatchSize = r.GetValue(batch), LearningRate = r.GetValue(lr), Momentum = r.GetValue(momentum), WeightDecay = r.GetValue(wd),
                Schedule = ParseName<LrScheduleKind>(r.GetValue(schedule)!), Patience = r.GetValue(patience), MaxLrDrops = r.GetValue(maxDrops),
                StepEpochs = r.GetValue(steps)!, Init = r.GetValue(init) ?? DefaultInit(r.GetValue(preset)!),
                Normalize = r.GetValue(normalize) is { } n ? ParseName<NormalizeMode>(n) : DefaultNormalize(r.GetValue(preset)!),
                PcaLighting = !r.GetValue(noPca), Flips = !r.GetValue(noFlip), Devices = r.GetValue(devices)!, Seed = r.GetValue(seed),
                Output = r.GetValue(output)!, Limit = r.GetValue(limit), LimitBatches = r.GetValue(limitBatches),
                ValidationHoldout = r.GetValue(holdout),
            };
            Runs.Train(o, r.GetValue(exportTo));
            return 0;
        });
    }

    /// <summary>The paper's init for the paper's network; He-normal for compact, which learns from it in a short run.</summary>
    public static InitScheme DefaultInit(string preset) => preset == "paper" ? InitScheme.Paper : InitScheme.Kaiming;

    public static NormalizeMode DefaultNormalize(string preset) => preset == "paper" ? NormalizeMode.Mean : NormalizeMode.MeanStd;
}
