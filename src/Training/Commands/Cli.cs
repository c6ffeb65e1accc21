using System.CommandLine;
using AlexNet.Training.Evaluation;

namespace AlexNet.Training.Commands;

/// <summary>The command line: train, resume, evaluate, export, plot, bench, import-torchvision, finetune.</summary>
public static class Cli
{
    public static RootCommand Build() => new("alexnet-train: train, evaluate and export the paper's two-tower AlexNet (TorchSharp); " +
                                             "import torchvision's AlexNet weights and fine-tune either on your own classes.")
    {
        new TrainCommand(), new ResumeCommand(), new EvaluateCommand(), new ExportCommand(), new PlotCommand(), new BenchCommand(),
        new ImportTorchvisionCommand(), new FineTuneCommand(),
    };

    /// <summary>The evaluate command's work without the process: what it would print, as results.</summary>
    public static List<EvalResult> EvaluateCommand(string? checkpoint, string? onnx, string? folder, string? fashion, bool tenCrop, int? limit) =>
        ModelEvaluation.Run(new EvaluateRequest(checkpoint, onnx, folder, fashion, tenCrop, limit));

    internal static Option<T> Opt<T>(string name, string description, T defaultValue) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue };
    internal static Option<T?> Opt<T>(string name, string description) => new(name) { Description = description };
    internal static Option<string> RequiredOpt(string name, string description) => new(name) { Description = description, Required = true };

    /// <summary>An enum value as the command line spells it (plateau, meanstd), and back.</summary>
    internal static string CliName<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();
    internal static T ParseName<T>(string name) where T : struct, Enum => Enum.Parse<T>(name, ignoreCase: true);
}
