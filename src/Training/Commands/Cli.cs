using AlexNet.Training.Evaluation;

namespace AlexNet.Training.Commands;

/// <summary>The command line: train, resume, evaluate, export, plot, bench, import-torchvision, finetune, predict, fit-ood, measure-ood, quantize, compare.</summary>
public static class Cli
{
    public static RootCommand Build() => new("alexnet-train: train, evaluate and export the paper's two-tower AlexNet (TorchSharp); " +
                                             "import torchvision's AlexNet weights and fine-tune either on your own classes.")
    {
        new TrainCommand(), new ResumeCommand(), new EvaluateCommand(), new ExportCommand(), new PlotCommand(), new BenchCommand(),
        new ImportTorchvisionCommand(), new FineTuneCommand(), new PredictCommand(), new FitOodCommand(), new MeasureOodCommand(),
        new QuantizeCommand(), new CompareCommand(),
    };

    /// <summary>The evaluate command's work without the process: what it would print, as results.</summary>
    public static List<EvalResult> EvaluateCommand(string? checkpoint, string? onnx, string? folder, string? fashion, bool tenCrop, int? limit) =>
        ModelEvaluation.Run(new EvaluateRequest(checkpoint, onnx, folder, fashion, tenCrop, limit));
}
