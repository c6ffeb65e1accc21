using AlexNet.Model;
using AlexNet.Training.Evaluation;
using AlexNet.Training.Networks;
using AlexNet.Training.Reporting;

namespace AlexNet.Training.Export;

/// <summary>What import-torchvision converts: a state dict, its labels in output order, where to write, and an optional
/// image folder (the first <paramref name="Limit"/> images) to evaluate on first.</summary>
public sealed record ImportRequest(string Weights, string Labels, string Out, string? Data, int? Limit);

/// <summary>torchvision AlexNet weights (.pth) to an ONNX model the API serves.</summary>
public static class TorchvisionImport
{
    /// <summary>Loads the state dict, checks the labels against its classes, optionally evaluates it with TorchSharp,
    /// and exports it; returns the full path written.</summary>
    public static string Run(ImportRequest q, ITrainingReport report)
    {
        var labels = LabelSet.Load(q.Labels);
        using var model = TorchvisionWeights.LoadModel(q.Weights);
        if (labels.Count != model.Spec.Classes)
            throw new ArgumentException($"{q.Labels} has {labels.Count} labels but {q.Weights} has {model.Spec.Classes} classes (rows of classifier.6.weight).");
        report.Info($"{q.Weights}: torchvision AlexNet, {model.parameters().Sum(p => p.numel()):N0} parameters, {model.Spec.Classes} classes");
        var metrics = new Dictionary<string, double>();
        if (q.Data is { } folder)
        {
            var e = ModelEvaluation.EvaluateTorchvision(model, labels, folder, q.Limit);
            report.Info($"{folder}: centre crop, {e.Summary}");
            (metrics["val_top1_error"], metrics["val_top5_error"]) = (e.Top1Error, e.Top5Error);
        }
        var provenance = new Provenance
        {
            Dataset = q.Data is null ? "unknown (imported weights)" : $"evaluated on {q.Data}",
            Init = $"torchvision AlexNet weights {Path.GetFileName(q.Weights)}",
            Command = Environment.CommandLine,
            Metrics = metrics,
            Note = "imported from a PyTorch state dict; torchvision's one-tower variant (61.1 M parameters with 1000 classes), " +
                   "not the paper's two-tower net",
            Domain = labels.Count == 1000 ? ImageNetDomain : null,
        };
        TorchvisionExporter.Export(model, labels, provenance, q.Out);
        return ModelExport.Wrote(q.Out, report);
    }

    /// <summary>torchvision's ImageNet weights (1000 classes): what they know.</summary>
    public const string ImageNetDomain = "ImageNet (ILSVRC 2012): colour photos of everyday objects and animals in 1,000 classes. " +
        "Drawings, text, screenshots and close-ups of things outside those classes get meaningless answers.";
}
