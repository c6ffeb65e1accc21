using System.Text.Json;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Model.Onnx;
using AlexNet.Model.OutOfDomain;
using AlexNet.Training.Data;
using AlexNet.Training.Reporting;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace AlexNet.Training.Export;

/// <summary>What fit-ood rewrites: an exported model, its held-out training images (Fashion-MNIST's split by
/// <paramref name="Holdout"/> and <paramref name="Seed"/>, as train makes it, or an image folder's val/), and where to
/// write (the model itself when <paramref name="Out"/> is null).</summary>
public sealed record DomainFitRequest(string Model, string? Out, string? FashionMnist, string? Data, int Holdout, int Seed, double Percentile,
    int? Limit = null);

/// <summary>
/// Gives an exported model its out-of-domain statistics: adds the <c>ood_stats</c> output
/// (<see cref="DomainStatisticsGraph"/>) with <see cref="OnnxFileEditor"/>, runs held-out training images through it in
/// ONNX Runtime, fits <see cref="DomainStatistics"/> on the first 60% and calibrates on the rest, and writes the file
/// with the statistics in its metadata. Before writing it checks that the new file's <c>probabilities</c> and
/// <c>features</c> equal the old file's on the calibration images, bit for bit. The export command and fit-ood share it.
/// </summary>
public static class DomainFit
{
    /// <summary>Share of the held-out images whose statistics are fitted; the rest calibrate the threshold.</summary>
    public const double FitShare = 0.6;
    const int BatchImages = 64;

    public static DomainStatistics Run(DomainFitRequest q, ITrainingReport report)
    {
        var bytes = File.ReadAllBytes(q.Model);
        var spec = SpecOf(bytes, q.Model);
        var (held, name) = HeldOut(q.FashionMnist, q.Data, q.Holdout, q.Seed, q.Limit, new ImagePreprocessor(spec));
        var stats = Apply(bytes, q.Out ?? q.Model, held, name, q.Percentile, report);
        ModelExport.Wrote(q.Out ?? q.Model, report);
        return stats;
    }

    /// <summary>The held-out images of a training run: Fashion-MNIST's training file split as <see cref="TrainingData.Load"/>
    /// splits it (only the held-out images are prepared), or an image folder's val/.</summary>
    public static (ImageSet Images, string Name) HeldOut(string? fashionMnist, string? folder, int holdout, int seed, int? limit, ImagePreprocessor prep)
    {
        if (fashionMnist is { } dir)
        {
            var (images, labels) = (Path.Combine(dir, "train-images-idx3-ubyte.gz"), Path.Combine(dir, "train-labels-idx1-ubyte.gz"));
            var total = IdxFile.ReadLabels(labels, limit).Length;
            var count = Math.Min(holdout, total / 5);
            var held = ImageSet.SplitOrder(total, seed)[..count];
            return (ImageSet.FromIdx(images, labels, prep, LabelSet.FashionMnist, limit, held),
                $"Fashion-MNIST training images held out for validation ({count}, seed {seed})");
        }
        if (folder is { } root)
        {
            var val = Path.Combine(root, "val");
            return (ImageSet.FromFolder(val, prep, (f, why) => Console.Error.WriteLine($"skipped {f}: {why}")), $"image folder {val}");
        }
        throw new ArgumentException("Name the held-out data: --fashion-mnist <folder> or --data <root with val/>.");
    }

    /// <summary>Fits on <paramref name="held"/> and writes <paramref name="model"/> with the statistics to <paramref name="outPath"/>.</summary>
    public static DomainStatistics Apply(byte[] model, string outPath, ImageSet held, string dataName, double percentile, ITrainingReport report)
    {
        var spec = SpecOf(model, outPath);
        var taps = DomainStatisticsGraph.ForAlexNet(spec);
        var names = OnnxFileEditor.TensorNames(model);
        if (taps.FirstOrDefault(t => !names.Contains(t.Tensor)) is { } missing)
            throw new InvalidDataException($"{outPath}: no tensor '{missing.Tensor}'; out-of-domain statistics need a graph written by " +
                "this project's exporter (AlexNetOnnxGraph).");
        var groups = DomainStatisticsGraph.Groups(taps);
        var nFit = (int)(held.Count * FitShare);
        if (nFit < 2 || held.Count - nFit < 1)
            throw new ArgumentException($"{dataName}: {held.Count} images are too few to fit and calibrate out-of-domain statistics.");
        var probe = OnnxFileEditor.Merge(model, DomainStatisticsGraph.Fragment(taps), DomainStatisticsGraph.Owns, [DomainStatistics.MetadataKey]);
        var prep = new ImagePreprocessor(spec);
        float[] rows;
        using (var session = new InferenceSession(probe))
            rows = Run(session, held, prep, DomainStatisticsGraph.Output);
        var dim = groups.Sum(g => g.Length);
        var stats = DomainStatistics.Fit(groups, rows.AsSpan(0, nFit * dim), rows.AsSpan(nFit * dim), percentile, data: dataName);

        var fragment = DomainStatisticsGraph.Fragment(taps).Metadata(DomainStatistics.MetadataKey, stats.ToJson());
        var final = OnnxFileEditor.Merge(model, fragment, DomainStatisticsGraph.Owns);
        var calibration = held.Subset([.. Enumerable.Range(nFit, held.Count - nFit)], "calibration");
        CheckUnchanged(model, final, calibration, prep, outPath);
        AtomicFile.Write(outPath, s => s.Write(final));
        var flagged = Enumerable.Range(nFit, held.Count - nFit).Count(i => stats.Score(rows.AsSpan(i * dim, dim)) > 1);
        report.Info($"out-of-domain statistics: {dim} columns in {groups.Count} groups ({string.Join(", ", groups.Select(g => $"{g.Name} {g.Length}"))}), " +
            $"fitted on {nFit} and calibrated on {calibration.Count} of {dataName}; threshold at the {percentile}th percentile " +
            $"({flagged} of {calibration.Count} calibration images above it); {stats.ToJson().Length / 1024.0:F0} KB of metadata");
        return stats;
    }

    /// <summary>Refuses to write when adding the statistics changed an answer: the same images through the old and the new
    /// graph must give the same probabilities and features, bit for bit.</summary>
    static void CheckUnchanged(byte[] before, byte[] after, ImageSet images, ImagePreprocessor prep, string path)
    {
        using var a = new InferenceSession(before);
        using var b = new InferenceSession(after);
        string[] outputs = [OnnxContract.Probabilities, OnnxContract.Features];
        var (x, y) = (Run(a, images, prep, outputs), Run(b, images, prep, outputs));
        for (var o = 0; o < outputs.Length; o++)
        {
            var differ = Enumerable.Range(0, x[o].Length).Count(i => BitConverter.SingleToInt32Bits(x[o][i]) != BitConverter.SingleToInt32Bits(y[o][i]));
            if (differ > 0)
                throw new InvalidOperationException($"{path}: adding the out-of-domain output changed {differ} values of '{outputs[o]}' " +
                    $"on {images.Count} images; nothing was written.");
        }
    }

    /// <summary>One output of <paramref name="session"/> for the centre crop of every image, row-major.</summary>
    public static float[] Run(InferenceSession session, ImageSet set, ImagePreprocessor prep, string output) => Run(session, set, prep, [output])[0];

    /// <summary>Several outputs for the centre crop of every image, each row-major.</summary>
    public static float[][] Run(InferenceSession session, ImageSet set, ImagePreprocessor prep, string[] outputs)
    {
        var s = prep.InputSize;
        var result = outputs.Select(_ => new List<float>()).ToArray();
        foreach (var (images, _, count) in BatchLoader.Crops(set, prep, [prep.Center], BatchImages))
        {
            var input = new DenseTensor<float>(images.AsMemory(0, count * 3 * s * s), [count, 3, s, s]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxContract.Input, input)], outputs);
            for (var o = 0; o < outputs.Length; o++) result[o].AddRange(results[o].AsEnumerable<float>());
        }
        return [.. result.Select(r => r.ToArray())];
    }

    /// <summary>The network's spec from the file's metadata (<c>alexnet.spec</c>).</summary>
    public static AlexNetSpec SpecOf(byte[] model, string path) =>
        OnnxFileEditor.Metadata(model).TryGetValue(OnnxContract.Keys.Spec, out var json)
            ? JsonSerializer.Deserialize<AlexNetSpec>(json)!
            : throw new InvalidDataException($"{path}: no '{OnnxContract.Keys.Spec}' in the metadata; out-of-domain statistics need a model exported by this project.");
}
