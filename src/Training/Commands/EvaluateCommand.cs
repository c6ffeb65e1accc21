using AlexNet.Training.Evaluation;
using AlexNet.Training.Reporting;

namespace AlexNet.Training.Commands;

/// <summary><c>evaluate</c>: an <see cref="EvaluateRequest"/>, then <see cref="ModelEvaluation.Run"/>; one line per crop mode.</summary>
public sealed class EvaluateCommand : VerbCommand
{
    public EvaluateCommand() : base("evaluate", "Top-1 and top-5 error, centre crop and 10 crops.")
    {
        var checkpoint = Opt<string>("--checkpoint", "A .ckpt file to evaluate with TorchSharp.");
        var model = Opt<string>("--model", "An exported .onnx file to evaluate with ONNX Runtime.");
        var data = Opt<string>("--data", "Image folder root/<class>/* to evaluate on (e.g. my-data/val).");
        var fashion = Opt<string>("--fashion-mnist", "Fashion-MNIST folder: evaluates on its 10,000 test images.");
        var tenCrop = Opt("--ten-crop", "Also report the paper's 10-crop error (corners, centre and mirrors, softmax averaged).", false);
        var limit = Opt<int?>("--limit", "Evaluate the first N images only.");
        AddOptions(checkpoint, model, data, fashion, tenCrop, limit);

        SetAction(r =>
        {
            var request = new EvaluateRequest(r.GetValue(checkpoint), r.GetValue(model), r.GetValue(data), r.GetValue(fashion),
                r.GetValue(tenCrop), r.GetValue(limit));
            // Progress like train's: a bar per crop mode on a terminal, else a line every 30 s and at the end (stderr).
            var report = new ConsoleReport(toStderr: true);
            foreach (var e in report.Run(() => ModelEvaluation.Run(request, report))) Console.WriteLine($"{e.Crops,-8} {e.Summary}");
            return 0;
        });
    }
}
