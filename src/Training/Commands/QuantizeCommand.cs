using AlexNet.Training.Loop;
using AlexNet.Training.Quantization;
using AlexNet.Training.Reporting;

namespace AlexNet.Training.Commands;

/// <summary><c>quantize</c>: a <see cref="QuantizeRequest"/>, then <see cref="Quantizer.Run"/>.</summary>
public sealed class QuantizeCommand : VerbCommand
{
    public QuantizeCommand() : base("quantize", "Static post-training int8 quantization (QDQ: uint8 activations per tensor, int8 weights per " +
        "output channel) with activation ranges calibrated on real images; probabilities and features stay float outputs.")
    {
        var d = new TrainOptions();
        var model = RequiredOpt("--model", "The float .onnx model (exported, imported from torchvision, or third-party with a profile).");
        var profile = Opt<string>("--profile", "A model profile JSON for a third-party file (default: name.profile.json beside it, when there).");
        var output = RequiredOpt("--out", "Where to write the int8 model (e.g. model.int8.onnx).");
        var calibration = Opt<string>("--calibration", "A folder of calibration images (searched recursively; the model's own preprocessing).");
        var fashion = Opt<string>("--fashion-mnist", "Fashion-MNIST folder: calibrate on the training images train held out for validation.");
        var images = Opt("--images", "How many images calibrate; up to --check-images of the rest check the result against the float model.", 500);
        var check = Opt("--check-images", "How many images not used for calibration check the result.", 1000);
        var method = Opt("--method", "How each activation's range is set: auto (both are tried; the one that agrees better with the float " +
            "model on the check images is written), minmax or percentile.", "auto");
        var percentile = Opt("--percentile", "The central share of each activation's values its range holds (percentile method).", Quantizer.DefaultPercentile);
        var bits = Opt("--weight-bits", "Bits of each int8 weight used: 7 (default; x86 without VNNI saturates 8-bit products, see " +
            "docs/benchmarks.md) or 8.", AlexNet.Model.Onnx.Quantization.QdqWriter.ReducedWeightBits);
        var holdout = Opt("--val-holdout", "Training images train held out for validation (Fashion-MNIST).", d.ValidationHoldout);
        var seed = Opt("--seed", "The seed train split the data with (and the order a folder's images are taken in).", d.Seed);
        var force = ForceOpt();
        AddOptions(model, profile, output, calibration, fashion, images, check, method, percentile, bits, holdout, seed, force);

        SetAction(r =>
        {
            RefuseOverwrite(r.GetValue(output), r.GetValue(force));
            if ((r.GetValue(calibration) is null) == (r.GetValue(fashion) is null))
                throw new ArgumentException("Name the calibration images: --calibration <folder> or --fashion-mnist <folder> (one of them).");
            Quantizer.Run(new QuantizeRequest(r.GetValue(model)!, r.GetValue(profile), r.GetValue(output)!, r.GetValue(calibration), r.GetValue(fashion),
                r.GetValue(images), r.GetValue(check), r.GetValue(method) is "auto" ? null : ParseName<CalibrationMethod>(r.GetValue(method)!), r.GetValue(percentile),
                r.GetValue(holdout), r.GetValue(seed), r.GetValue(bits)), new ConsoleReport());
            Console.WriteLine(r.GetValue(output));
            return 0;
        });
    }
}
