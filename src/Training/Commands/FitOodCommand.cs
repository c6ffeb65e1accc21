using AlexNet.Model.OutOfDomain;
using AlexNet.Training.Export;
using AlexNet.Training.Loop;
using AlexNet.Training.Reporting;

namespace AlexNet.Training.Commands;

/// <summary><c>fit-ood</c>: a <see cref="DomainFitRequest"/>, then <see cref="DomainFit.Run"/>.</summary>
public sealed class FitOodCommand : VerbCommand
{
    public FitOodCommand() : base("fit-ood", "Add out-of-domain statistics to an exported .onnx model (what export does after training): " +
        "runs held-out training images through it with ONNX Runtime and rewrites the file; its probabilities and features stay bit for bit the same.")
    {
        var d = new TrainOptions();
        var model = RequiredOpt("--model", "The exported .onnx model.");
        var output = Opt<string>("--out", "Where to write (default: rewrite --model in place).");
        var fashion = Opt<string>("--fashion-mnist", "Fashion-MNIST folder: its training images held out for validation, as train holds them out.");
        var data = Opt<string>("--data", "Image folder root with val/<class>/* (the run's validation images).");
        var holdout = Opt("--val-holdout", "Training images train held out for validation (Fashion-MNIST).", d.ValidationHoldout);
        var seed = Opt("--seed", "The seed train split the data with.", d.Seed);
        var percentile = Opt("--percentile", "Percentile of the calibration images' scores at which the flag is set.", DomainStatistics.DefaultPercentile);
        var force = ForceOpt();
        AddOptions(model, output, fashion, data, holdout, seed, percentile, force);

        SetAction(r =>
        {
            RefuseOverwrite(r.GetValue(output), r.GetValue(force));
            DomainFit.Run(new DomainFitRequest(r.GetValue(model)!, r.GetValue(output), r.GetValue(fashion), r.GetValue(data),
                r.GetValue(holdout), r.GetValue(seed), r.GetValue(percentile)), new ConsoleReport());
            return 0;
        });
    }
}
