using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Training.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace AlexNet.Training.Evaluation;

/// <summary>Turns a batch of crops (N, 3, S, S) in pixel units into class probabilities (N, classes).</summary>
public interface IScorer
{
    int Classes { get; }
    float[] Probabilities(float[] images, int count);
}

/// <summary>An exported model through ONNX Runtime (what the service runs).</summary>
public sealed class OnnxScorer(InferenceSession session, int inputSize) : IScorer
{
    public int Classes { get; } = session.OutputMetadata[OnnxContract.Probabilities].Dimensions[1];

    public float[] Probabilities(float[] images, int count)
    {
        var input = new DenseTensor<float>(images.AsMemory(0, count * 3 * inputSize * inputSize), [count, 3, inputSize, inputSize]);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxContract.Input, input)], [OnnxContract.Probabilities]);
        return results[0].AsTensor<float>().ToArray();
    }
}

/// <summary>Errors and mean cross-entropy over <paramref name="Images"/> images; <paramref name="Crops"/> is "centre" or "10-crop".</summary>
/// <param name="Classes">How many classes the model tells apart: with five or fewer, top-5 error is 0 by construction
/// and the summary leaves it out.</param>
public sealed record EvalResult(int Images, double Loss, double Top1Error, double Top5Error, string Crops, int Classes = int.MaxValue)
{
    /// <summary>The line the evaluate and import-torchvision commands print after the crops or the folder.</summary>
    public string Summary => Classes > 5
        ? $"images {Images}  top-1 error {100 * Top1Error:F2}%  top-5 error {100 * Top5Error:F2}%  loss {Loss:F4}"
        : $"images {Images}  top-1 error {100 * Top1Error:F2}%  loss {Loss:F4}  ({Classes} classes: no top-5)";
}

/// <summary>Top-1 and top-5 error on the centre crop or the paper's 10 crops (softmax averaged).</summary>
public static class Evaluator
{
    /// <param name="report">Told after each batch (evaluate's progress bar, or a line every 30 s); null: silent (training's
    /// validation, which reports per epoch).</param>
    public static EvalResult Evaluate(IScorer scorer, ImageSet set, ImagePreprocessor prep, bool tenCrop, int batchImages = 64,
        Reporting.ITrainingReport? report = null)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var crops = tenCrop ? prep.TenCrops : [prep.Center];
        int n = 0, top1 = 0, top5 = 0;
        double loss = 0;
        var classes = scorer.Classes;
        var mean = new float[classes];
        foreach (var (images, labels, count) in BatchLoader.Crops(set, prep, crops, Math.Max(1, batchImages / crops.Count)))
        {
            var probs = scorer.Probabilities(images, count * crops.Count);
            for (var i = 0; i < count; i++)
            {
                Array.Clear(mean);
                for (var c = 0; c < crops.Count; c++)
                    System.Numerics.Tensors.TensorPrimitives.Add(mean, probs.AsSpan((i * crops.Count + c) * classes, classes), mean);
                System.Numerics.Tensors.TensorPrimitives.Divide(mean, crops.Count, mean);
                var label = labels[i];
                var best = Maths.TopK(mean, 5);
                if (best[0].Index == label) top1++;
                if (best.Any(b => b.Index == label)) top5++;
                loss -= Math.Log(Math.Max(mean[label], 1e-12f));
                n++;
            }
            report?.Progress(tenCrop ? "10-crop" : "centre", n, set.Count,
                $"top-1 err {100 * (1 - (double)top1 / n):F2}% {n / Math.Max(watch.Elapsed.TotalSeconds, 1e-3):F0} img/s");
        }
        return new EvalResult(n, loss / n, 1 - (double)top1 / n, 1 - (double)top5 / n, tenCrop ? "10-crop" : "centre", classes);
    }
}
