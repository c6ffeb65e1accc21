using AlexNet.Training.Prediction;

namespace AlexNet.Training.Commands;

/// <summary><c>predict</c>: a <see cref="PredictRequest"/>, then <see cref="FolderPrediction.Run"/>; progress and skipped
/// files on stderr, the summary on stdout.</summary>
public sealed class PredictCommand : VerbCommand
{
    public PredictCommand() : base("predict", "Top-k classes of every image under a folder into a CSV, as the service answers them.")
    {
        var model = RequiredOpt("--model", "An .onnx file (exported, or third-party with --profile).");
        var profile = Opt<string>("--profile", "A model profile JSON for a third-party file (default: name.profile.json beside it, when there).");
        var data = RequiredOpt("--data", "Folder of images, searched recursively. When its first-level folders are class names, " +
            "top-1/top-5 accuracy is reported.");
        var output = RequiredOpt("--out", "CSV to write: path, then label_i and probability_i for the top k.");
        var top = Opt("--top", "How many classes per image.", 5);
        var tenCrop = Opt("--ten-crop", "Average the softmax over the paper's 10 crops instead of the central one.", false);
        var force = ForceOpt();
        AddOptions(model, profile, data, output, top, tenCrop, force);

        SetAction(r =>
        {
            var q = new PredictRequest(r.GetValue(model)!, r.GetValue(profile), r.GetValue(data)!, r.GetValue(output)!, r.GetValue(top), r.GetValue(tenCrop));
            RefuseOverwrite(q.Out, r.GetValue(force));
            var summary = FolderPrediction.Run(q, line => Console.Error.WriteLine(line));
            Console.WriteLine(summary.Text);
            Console.WriteLine($"wrote {q.Out}");
            return 0;
        });
    }
}
