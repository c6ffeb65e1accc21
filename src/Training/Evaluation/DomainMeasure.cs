using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Model.Onnx;
using AlexNet.Model.OutOfDomain;
using AlexNet.Training.Data;
using AlexNet.Training.Export;
using Microsoft.ML.OnnxRuntime;

namespace AlexNet.Training.Evaluation;

/// <summary>What measure-ood scores: a model with out-of-domain statistics, Fashion-MNIST's test images (the first
/// <paramref name="Limit"/>), the same images inverted (dark object on light), and image files (photos).</summary>
public sealed record DomainMeasureRequest(string Model, string? FashionMnist, IReadOnlyList<string> Photos, int? Limit);

/// <summary>How often a model's out-of-domain flag (<see cref="DomainStatistics"/>) fires on in-domain test images and on
/// images it was never meant to see.</summary>
public static class DomainMeasure
{
    /// <summary>The lines the command prints.</summary>
    public static List<string> Run(DomainMeasureRequest q)
    {
        var bytes = File.ReadAllBytes(q.Model);
        var meta = OnnxFileEditor.Metadata(bytes);
        if (!meta.TryGetValue(DomainStatistics.MetadataKey, out var json))
            throw new InvalidDataException($"{q.Model} has no out-of-domain statistics ('{DomainStatistics.MetadataKey}'); run fit-ood first.");
        var stats = DomainStatistics.FromJson(json);
        var spec = DomainFit.SpecOf(bytes, q.Model);
        var prep = new ImagePreprocessor(spec);
        using var session = new InferenceSession(bytes);
        var lines = new List<string>
        {
            $"{Path.GetFileName(q.Model)}: threshold at the {stats.Percentile}th percentile of {stats.CalibrationImages} calibration images " +
            $"({stats.Data}); a score above 1 is flagged",
        };
        string Line(string what, ImageSet set)
        {
            var (flagged, groups) = Flags(session, set, prep, stats);
            var by = string.Join(", ", groups.OrderByDescending(g => g.Value).Select(g => $"{g.Key} {g.Value}"));
            return $"{what}: {flagged} of {set.Count} flagged ({100.0 * flagged / set.Count:F2}%){(by.Length > 0 ? $"; by the group that flagged them: {by}" : "")}";
        }
        if (q.FashionMnist is { } dir)
        {
            var test = ImageSet.FromIdx(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"), Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"), prep,
                LabelSet.FashionMnist, q.Limit);
            lines.Add(Line("Fashion-MNIST test images", test));
            lines.Add(Line("inverted test images (255 - pixel)", Inverted(test)));
        }
        if (q.Photos.Count > 0)
        {
            var photos = Photos(q.Photos, prep);
            var rows = DomainFit.Run(session, photos, prep, DomainStatisticsGraph.Output);
            var scores = Enumerable.Range(0, photos.Count).Select(i => (Score: stats.Score(rows.AsSpan(i * stats.Dim, stats.Dim), out var g), Group: g)).ToArray();
            lines.Add($"photos: {scores.Count(s => s.Score > 1)} of {photos.Count} flagged");
            lines.AddRange(q.Photos.Select((p, i) =>
                $"  {Path.GetFileName(p),-22} score {scores[i].Score,10:F2}  {(scores[i].Score > 1 ? "flagged" : "NOT flagged")} (largest: {scores[i].Group})"));
        }
        return lines;
    }

    /// <summary>How many images score above 1, and how many of those each group flagged (the group with the largest distance).</summary>
    public static (int Flagged, Dictionary<string, int> ByGroup) Flags(InferenceSession session, ImageSet set, ImagePreprocessor prep, DomainStatistics stats)
    {
        var rows = DomainFit.Run(session, set, prep, DomainStatisticsGraph.Output);
        var byGroup = new Dictionary<string, int>();
        var flagged = 0;
        for (var i = 0; i < set.Count; i++)
        {
            if (stats.Score(rows.AsSpan(i * stats.Dim, stats.Dim), out var group) <= 1) continue;
            flagged++;
            byGroup[group] = byGroup.GetValueOrDefault(group) + 1;
        }
        return (flagged, byGroup);
    }

    /// <summary>Every pixel as 255 - pixel: the same garments, dark on light.</summary>
    public static ImageSet Inverted(ImageSet set) =>
        new([.. set.Pixels.Select(p => (byte)(255 - p))], set.Labels, set.Size, set.Classes, $"{set.Source} (inverted)");

    /// <summary>Image files decoded and prepared as the service prepares uploads (the shared hardened decoder).</summary>
    public static ImageSet Photos(IReadOnlyList<string> files, ImagePreprocessor prep)
    {
        var bytes = prep.ResizeSize * prep.ResizeSize * 3;
        var pixels = new byte[files.Count * bytes];
        for (var i = 0; i < files.Count; i++)
        {
            using var image = SafeImageDecoder.Default.Decode(File.ReadAllBytes(files[i]));
            prep.Prepare(image).Rgb.CopyTo(pixels, i * bytes);
        }
        return new ImageSet(pixels, new int[files.Count], prep.ResizeSize, new LabelSet(["photo"]), "photos");
    }
}
