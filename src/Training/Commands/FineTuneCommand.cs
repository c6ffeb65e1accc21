using AlexNet.Training.Loop;

namespace AlexNet.Training.Commands;

/// <summary><c>finetune</c>: the options of <see cref="FineTuneOptions"/>, then <see cref="Runs.FineTune"/>.</summary>
public sealed class FineTuneCommand : VerbCommand
{
    public FineTuneCommand()
        : base("finetune", "Replace the last layer for the classes of --data and train: pretrained layers 10x slower, or frozen with --freeze.")
    {
        var d = new FineTuneOptions();
        var from = RequiredOpt("--from", "Pretrained model: a checkpoint of ours (.ckpt) or torchvision AlexNet weights (.pth state dict).");
        var data = RequiredOpt("--data", "Image-folder root holding train/<class>/* and val/<class>/*: the new classes.");
        var epochs = Opt("--epochs", "Epochs to train.", d.Epochs);
        var batch = Opt("--batch-size", "Images per SGD step.", d.BatchSize);
        var lr = Opt("--lr", "Learning rate of the new last layer (lower it if the loss climbs far above ln(classes)).", d.LearningRate);
        var scale = Opt("--pretrained-lr-scale", "The pretrained layers learn at lr times this (0.1: ten times slower).", d.PretrainedLrScale);
        var freeze = Opt("--freeze", "Train the new last layer only (fc8 / classifier.6); the pretrained layers stay as loaded.", d.Freeze);
        var momentum = Opt("--momentum", "SGD momentum.", d.Momentum);
        var wd = Opt("--weight-decay", "L2 weight decay.", d.WeightDecay);
        var patience = Opt("--patience", "Epochs without improvement before lr / 10.", d.Patience);
        var noFlip = Opt("--no-flip", "Turn horizontal flips off.", false);
        var devices = Opt("--devices", "cpu, cuda:0, or cuda:0,cuda:1 (two-tower nets only).", d.Devices);
        var seed = Opt("--seed", "Seed of the new layer, data order, augmentation and dropout.", d.Seed);
        var output = Opt("--out", "Run folder: best.ckpt or best.pth (+ labels.txt), metrics.csv.", d.Output);
        var (limit, limitBatches) = SmokeRunOptions();
        var exportTo = Opt<string>("--export", "After training, export the best weights to this .onnx path.");
        var force = ForceOpt();
        AddOptions(
            from, data, epochs, batch, lr, scale, freeze, momentum, wd, patience, noFlip, devices, seed, output, limit, limitBatches, exportTo,
            force);

        SetAction(r =>
        {
            RefuseOverwrite(r.GetValue(output), r.GetValue(force), runFolder: true);
            RefuseOverwrite(r.GetValue(exportTo), r.GetValue(force));
            var o = new FineTuneOptions
            {
                From = r.GetValue(from)!, Data = r.GetValue(data)!, Epochs = r.GetValue(epochs), BatchSize = r.GetValue(batch),
                LearningRate = r.GetValue(lr), PretrainedLrScale = r.GetValue(scale), Freeze = r.GetValue(freeze), Momentum = r.GetValue(momentum),
                WeightDecay = r.GetValue(wd), Patience = r.GetValue(patience), Flips = !r.GetValue(noFlip), Devices = r.GetValue(devices)!,
                Seed = r.GetValue(seed), Output = r.GetValue(output)!, Limit = r.GetValue(limit), LimitBatches = r.GetValue(limitBatches),
            };
            Runs.FineTune(o, r.GetValue(exportTo));
            return 0;
        });
    }
}
