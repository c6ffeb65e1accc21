using AlexNet.Training.Evaluation;

namespace AlexNet.Training.Commands;

/// <summary><c>measure-ood</c>: a <see cref="DomainMeasureRequest"/>, then <see cref="DomainMeasure.Run"/>.</summary>
public sealed class MeasureOodCommand : VerbCommand
{
    public MeasureOodCommand() : base("measure-ood", "How often a model's out-of-domain flag fires on Fashion-MNIST's test images, " +
        "the same images inverted, and photos.")
    {
        var model = RequiredOpt("--model", "An .onnx model with out-of-domain statistics (export or fit-ood wrote them).");
        var fashion = Opt<string>("--fashion-mnist", "Fashion-MNIST folder: scores its test images, plain and inverted.");
        var photos = new Option<string[]>("--photos")
        {
            Description = "Image files that are not garments (repeatable), e.g. skimage's data/*.png.", AllowMultipleArgumentsPerToken = true,
        };
        var limit = Opt<int?>("--limit", "Score the first N test images only.");
        AddOptions(model, fashion, photos, limit);

        SetAction(r =>
        {
            foreach (var line in DomainMeasure.Run(new DomainMeasureRequest(r.GetValue(model)!, r.GetValue(fashion), r.GetValue(photos) ?? [],
                         r.GetValue(limit))))
                Console.WriteLine(line);
            return 0;
        });
    }
}
