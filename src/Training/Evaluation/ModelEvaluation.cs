using System.Text.Json;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Training.Data;
using AlexNet.Training.Loop;
using AlexNet.Training.Networks;
using Microsoft.ML.OnnxRuntime;

namespace AlexNet.Training.Evaluation;

/// <summary>
/// What the evaluate command scores: exactly one of a checkpoint (TorchSharp) or an exported model (ONNX Runtime), on
/// an image folder root/&lt;class&gt;/* or Fashion-MNIST's test set, the first <paramref name="Limit"/> images only.
/// </summary>
public sealed record EvaluateRequest(string? Checkpoint, string? Model, string? Data, string? FashionMnist, bool TenCrop, int? Limit);

/// <summary>Top-1/top-5 error of a checkpoint, an exported file or imported torchvision weights on labelled images.</summary>
public static class ModelEvaluation
{
    /// <summary>The centre-crop result, and the 10-crop one when asked for.</summary>
    public static List<EvalResult> Run(EvaluateRequest q, Reporting.ITrainingReport? report = null)
    {
        if ((q.Checkpoint is null) == (q.Model is null)) throw new ArgumentException("Give exactly one of --checkpoint or --model.");
        IScorer scorer;
        AlexNetSpec spec;
        LabelSet labels;
        IDisposable owner;
        if (q.Checkpoint is not null)
        {
            var (header, model) = Checkpoint.Load(q.Checkpoint);
            (scorer, spec, labels, owner) = (new TorchScorer(model), header.Spec, header.Labels, model);
        }
        else
        {
            var session = new InferenceSession(q.Model!);
            var meta = session.ModelMetadata.CustomMetadataMap;
            spec = JsonSerializer.Deserialize<AlexNetSpec>(meta[OnnxContract.Keys.Spec])!;
            labels = new LabelSet(JsonSerializer.Deserialize<string[]>(meta[OnnxContract.Keys.Labels])!);
            (scorer, owner) = (new OnnxScorer(session, spec.InputSize), session);
        }
        using (owner)
        {
            var prep = new ImagePreprocessor(spec);
            ImageSet set;
            if (q.FashionMnist is { } fashion)
                set = ImageSet.FromIdx(Path.Combine(fashion, "t10k-images-idx3-ubyte.gz"), Path.Combine(fashion, "t10k-labels-idx1-ubyte.gz"),
                    prep, labels, q.Limit);
            else if (q.Data is { } folder) set = Folder(folder, prep, labels, q.Limit);
            else throw new ArgumentException("Name the data: --data <folder of class folders> or --fashion-mnist <folder>.");
            var results = new List<EvalResult> { Evaluator.Evaluate(scorer, set, prep, tenCrop: false, report: report) };
            if (q.TenCrop) results.Add(Evaluator.Evaluate(scorer, set, prep, tenCrop: true, report: report));
            return results;
        }
    }

    /// <summary>Centre-crop top-1/top-5 of a torchvision model on root/&lt;class&gt;/*, folders named by label or by wnid.</summary>
    public static EvalResult EvaluateTorchvision(TorchvisionAlexNet model, LabelSet labels, string folder, int? limit)
    {
        var prep = new ImagePreprocessor(model.Spec.ResizeSize, model.Spec.InputSize);
        var byWnid = labels.Synsets is { } syn && syn.Any(s => Directory.Exists(Path.Combine(folder, s)));
        var set = Folder(folder, prep, byWnid ? new LabelSet(labels.Synsets!) : labels, limit);
        return Evaluator.Evaluate(new TorchScorer(model, model.Spec.InputSize, model.Spec.Classes), set, prep, tenCrop: false);
    }

    static ImageSet Folder(string folder, ImagePreprocessor prep, LabelSet labels, int? limit) =>
        ImageSet.FromFolder(folder, prep, (f, why) => Console.Error.WriteLine($"skipped {f}: {why}"), labels).Take(limit);
}
