using System.Diagnostics;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Training.Reporting;

namespace AlexNet.Training.Data;

/// <summary>The training and validation images of a run, prepared at one size, and their classes.</summary>
public sealed record TrainingData(ImageSet Train, ImageSet Validation, LabelSet Labels, string Name)
{
    /// <summary>
    /// Fashion-MNIST's training file (<paramref name="holdout"/> images, at most a fifth, held out for validation by
    /// <paramref name="seed"/>), or an image folder with train/ and val/; <paramref name="limit"/> keeps the first N
    /// training images. Unreadable images are reported by path and skipped.
    /// </summary>
    public static TrainingData Load(string? folder, string? fashionMnist, int? limit, int holdout, int seed, ImagePreprocessor prep,
        ITrainingReport report)
    {
        var sw = Stopwatch.StartNew();
        TrainingData data;
        if (fashionMnist is { } dir)
        {
            var train = ImageSet.FromIdx(Path.Combine(dir, "train-images-idx3-ubyte.gz"), Path.Combine(dir, "train-labels-idx1-ubyte.gz"),
                prep, LabelSet.FashionMnist, limit);
            var (val, rest) = train.Split(Math.Min(holdout, train.Count / 5), seed);
            data = new TrainingData(rest, val, LabelSet.FashionMnist, "Fashion-MNIST");
        }
        else if (folder is { } root)
        {
            void Skip(string file, string why) => report.Warn($"skipped {file}: {why}");
            var train = ImageSet.FromFolder(Path.Combine(root, "train"), prep, Skip).Take(limit);
            var val = ImageSet.FromFolder(Path.Combine(root, "val"), prep, Skip, train.Classes);
            data = new TrainingData(train, val, train.Classes, $"image folder {root}");
        }
        else throw new ArgumentException("Name the data: --data <root with train/ and val/> or --fashion-mnist <folder>.");
        report.Info($"{data.Name}: {data.Train.Count} training and {data.Validation.Count} validation images, " +
                    $"{data.Labels.Count} classes, prepared at {prep.ResizeSize}x{prep.ResizeSize} in {sw.Elapsed.TotalSeconds:F1} s");
        return data;
    }
}
