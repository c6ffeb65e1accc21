using AlexNet.Training.Prediction;
using AlexNet.Training.Quantization;

namespace AlexNet.Training.Commands;

/// <summary><c>compare</c>: two models on the same images (<see cref="Agreement"/>): how often they agree, how alike
/// their features are, and, on labelled images, each one's accuracy. What quantize checks, on any images.</summary>
public sealed class CompareCommand : VerbCommand
{
    public CompareCommand() : base("compare", "Run two models of the same classes (e.g. float and int8) on the same images: top-1 agreement, " +
        "feature cosine, and both accuracies on Fashion-MNIST's test images.")
    {
        var model = RequiredOpt("--model", "The reference .onnx model (e.g. the float one).");
        var other = RequiredOpt("--other", "The .onnx model compared with it (e.g. its int8 version).");
        var profile = Opt<string>("--profile", "A model profile JSON, for third-party files (both use it).");
        var data = Opt<string>("--data", "A folder of images, searched recursively (unlabelled: agreement and cosine only).");
        var fashion = Opt<string>("--fashion-mnist", "Fashion-MNIST folder: its 10,000 test images, labelled.");
        var tenCrop = Opt("--ten-crop", "Also compare on the paper's 10 crops (class from the mean of the crops' probabilities).", false);
        var limit = Opt<int?>("--limit", "The first N images only.");
        AddOptions(model, other, profile, data, fashion, tenCrop, limit);

        SetAction(r =>
        {
            if ((r.GetValue(data) is null) == (r.GetValue(fashion) is null))
                throw new ArgumentException("Name the images: --data <folder> or --fashion-mnist <folder> (one of them).");
            using var a = new OnnxPredictor(r.GetValue(model)!, r.GetValue(profile));
            using var b = new OnnxPredictor(r.GetValue(other)!, r.GetValue(profile));
            if (a.Classes != b.Classes) throw new InvalidDataException($"The models have {a.Classes} and {b.Classes} classes.");
            var (images, name) = ImageSource.Load(r.GetValue(data), r.GetValue(fashion), fashionTest: true, 0, 42, a.Preprocessor,
                line => Console.Error.WriteLine(line));
            if (r.GetValue(limit) is { } n) images = images.Take(n);
            var labelled = r.GetValue(fashion) is not null;
            Console.WriteLine($"centre crop, {name}: {Agreement.Measure(a, b, images, [a.Preprocessor.Center], labelled).Text}");
            if (r.GetValue(tenCrop))
                Console.WriteLine($"10 crops, {name}: {Agreement.Measure(a, b, images, a.Preprocessor.TenCrops, labelled).Text}");
            return 0;
        });
    }
}
