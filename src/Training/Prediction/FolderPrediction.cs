using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Text;
using AlexNet.Model;
using AlexNet.Model.Imaging;

namespace AlexNet.Training.Prediction;

/// <summary>What the predict command does: every file under <paramref name="Data"/> through <paramref name="Model"/>,
/// the top <paramref name="Top"/> classes of each into the CSV <paramref name="Out"/>.</summary>
public sealed record PredictRequest(string Model, string? Profile, string Data, string Out, int Top = 5, bool TenCrop = false, int BatchImages = 16);

/// <summary>How a run went: images predicted, files skipped (path and why), and top-1/top-5 accuracy over the images
/// whose first folder under the data root names one of the model's classes (null when none does).</summary>
public sealed record PredictSummary(int Predicted, IReadOnlyList<(string Path, string Why)> Skipped, int Labelled, double? Top1, double? Top5)
{
    public string Text => $"{Predicted} images predicted, {Skipped.Count} skipped" + (Top1 is { } t1
        ? $"; {Labelled} in folders named by a class: acc@1 {100 * t1:F2}%" + (Top5 is { } t5 ? $"  acc@5 {100 * t5:F2}%" : "")
        : "");
}

/// <summary>
/// Batch predictions over a folder tree, as the service answers them: the hardened <see cref="SafeImageDecoder"/>
/// with the service's default limits and its aspect-ratio rule, <see cref="ImagePreprocessor.Prepare"/>, the
/// central crop (or the paper's 10 crops, probabilities averaged in the same order as the service), and
/// <see cref="OnnxPredictor"/>. Unreadable files are reported by path and skipped. The CSV has one row per image:
/// its path relative to the data root, then label and probability for each of the top k, best first.
/// </summary>
public static class FolderPrediction
{
    /// <summary>The service's Uploads:MaxAspectRatio default: a thinner image would grow huge when its shorter side is scaled.</summary>
    const int MaxAspectRatio = 50;

    public static PredictSummary Run(PredictRequest q, Action<string> progress)
    {
        if (!Directory.Exists(q.Data)) throw new DirectoryNotFoundException($"--data {q.Data} is not a folder.");
        if (q.Top < 1) throw new ArgumentException($"--top is {q.Top}; give 1 or more.");
        using var predictor = new OnnxPredictor(q.Model, q.Profile);
        var pre = predictor.Preprocessor;
        var labels = predictor.Labels;
        var k = Math.Min(q.Top, predictor.Classes);
        var root = Path.GetFullPath(q.Data);
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var classOf = ClassFolders(root, labels);
        IReadOnlyList<CropWindow> crops = q.TenCrop ? pre.TenCrops : [pre.Center];

        var skipped = new List<(string, string)>();
        int predicted = 0, labelled = 0, top1 = 0, top5 = 0;
        var started = Stopwatch.StartNew();
        var lastReport = Stopwatch.StartNew();
        var tmp = q.Out + ".tmp";
        using (var csv = new StreamWriter(tmp, append: false, new UTF8Encoding(false)))
        {
            csv.WriteLine(string.Join(",", new[] { "path" }.Concat(Enumerable.Range(1, k).SelectMany(i => new[] { $"label_{i}", $"probability_{i}" }))));
            foreach (var chunk in files.Chunk(q.BatchImages))
            {
                var prepared = new PreparedImage?[chunk.Length];
                var why = new string?[chunk.Length];
                Parallel.For(0, chunk.Length, i =>
                {
                    try
                    {
                        using var image = SafeImageDecoder.Default.Decode(File.ReadAllBytes(chunk[i]));
                        var (longer, shorter) = (Math.Max(image.Width, image.Height), Math.Min(image.Width, image.Height));
                        if (longer > (long)shorter * MaxAspectRatio)
                            why[i] = $"{image.Width}x{image.Height} is thinner than {MaxAspectRatio}:1 (the service refuses it too)";
                        else prepared[i] = pre.Prepare(image);
                    }
                    catch (ImageRejectedException e)
                    {
                        why[i] = e.Message;
                    }
                    catch (IOException e)
                    {
                        why[i] = e.Message;
                    }
                    catch (UnauthorizedAccessException e)
                    {
                        why[i] = e.Message;
                    }
                });
                var good = Enumerable.Range(0, chunk.Length).Where(i => prepared[i] is not null).ToArray();
                foreach (var i in Enumerable.Range(0, chunk.Length).Where(i => why[i] is not null))
                {
                    var relative = Relative(root, chunk[i]);
                    skipped.Add((relative, why[i]!));
                    progress($"skipped {relative}: {why[i]}");
                }
                if (good.Length > 0)
                {
                    var rows = new float[good.Length * crops.Count * pre.CropLength];   // (images x crops, 3, S, S)
                    for (var g = 0; g < good.Length; g++)
                        for (var c = 0; c < crops.Count; c++)
                            pre.WriteCrop(prepared[good[g]]!, crops[c], rows.AsSpan((g * crops.Count + c) * pre.CropLength, pre.CropLength));
                    var scores = predictor.Run(rows, good.Length * crops.Count);
                    for (var g = 0; g < good.Length; g++)
                    {
                        var probabilities = Average(scores, g, crops.Count, predictor.Classes);
                        var best = Maths.TopK(probabilities, k);
                        var relative = Relative(root, chunk[good[g]]);
                        csv.WriteLine(string.Join(",", new[] { Csv(relative) }.Concat(best.SelectMany(s =>
                            new[] { Csv(labels.Names[s.Index]), s.Score.ToString("G9", CultureInfo.InvariantCulture) }))));
                        predicted++;
                        if (classOf(relative) is { } truth)
                        {
                            labelled++;
                            var five = Maths.TopK(probabilities, Math.Min(5, predictor.Classes));
                            if (five[0].Index == truth) top1++;
                            if (five.Any(s => s.Index == truth)) top5++;
                        }
                    }
                }
                if (lastReport.Elapsed.TotalSeconds >= 1 || predicted + skipped.Count == files.Count)
                {
                    progress(Progress(predicted + skipped.Count, files.Count, predicted, started.Elapsed));
                    lastReport.Restart();
                }
            }
        }
        File.Move(tmp, q.Out, overwrite: true);
        return new PredictSummary(predicted, skipped, labelled,
            labelled > 0 ? (double)top1 / labelled : null, labelled > 0 && predictor.Classes > 5 ? (double)top5 / labelled : null);
    }

    /// <summary>The central crop's probabilities, or the 10 crops' mean (summed in crop order, then divided, as the service does).</summary>
    static float[] Average(float[] scores, int image, int crops, int classes)
    {
        if (crops == 1) return scores.AsSpan(image * classes, classes).ToArray();
        var mean = new float[classes];
        for (var c = 0; c < crops; c++) TensorPrimitives.Add(mean, scores.AsSpan((image * crops + c) * classes, classes), mean);
        TensorPrimitives.Divide(mean, crops, mean);
        return mean;
    }

    static string Progress(int done, int total, int predicted, TimeSpan elapsed)
    {
        var rate = predicted / Math.Max(elapsed.TotalSeconds, 1e-3);
        var eta = done < total && rate > 0 ? TimeSpan.FromSeconds((total - done) / rate) : TimeSpan.Zero;
        return $"{done}/{total} files  {rate:F1} img/s  ETA {eta:hh\\:mm\\:ss}";
    }

    /// <summary>The class index named by a path's first folder (label or WordNet id, any case), or null.</summary>
    static Func<string, int?> ClassFolders(string root, LabelSet labels)
    {
        var byName = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < labels.Count; i++)
        {
            byName.TryAdd(labels.Names[i], i);
            if (labels.Synsets is { } s && !string.IsNullOrWhiteSpace(s[i])) byName.TryAdd(s[i], i);
        }
        return relative => relative.IndexOf('/') is var slash and > 0 && byName.TryGetValue(relative[..slash], out var c) ? c : null;
    }

    static string Relative(string root, string file) => Path.GetRelativePath(root, file).Replace(Path.DirectorySeparatorChar, '/');

    /// <summary>A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).</summary>
    static string Csv(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + field.Replace("\"", "\"\"") + "\"" : field;
}
