using AlexNet.Model.Imaging;
using AlexNet.Model.Onnx;
using AlexNet.Model.Onnx.Quantization;
using AlexNet.Training.Data;
using AlexNet.Training.Prediction;

namespace AlexNet.Training.Quantization;

/// <summary>How an activation's range is set from the calibration images.</summary>
public enum CalibrationMethod
{
    /// <summary>The central <c>percentile</c> of the values (both tails cut): a rare outlier no longer stretches the
    /// 256 steps over a range the other values never use.</summary>
    Percentile,
    /// <summary>The smallest and largest value seen: nothing clips, but one outlier coarsens every step.</summary>
    MinMax,
}

/// <summary>
/// Measures the ranges of the tensors a <see cref="QdqPlan"/> quantizes: the model with those tensors added as outputs
/// (<see cref="OnnxFileEditor"/>), run on the calibration images' centre crops with the model's own preprocessing
/// (<see cref="OnnxPredictor"/>, which also applies a profile's normalisation). A first pass takes each tensor's
/// minimum and maximum; a second fills a histogram of <see cref="Bins"/> bins over that span, from which the
/// percentile ranges are read. Counts are integers and each tensor is counted by one thread, so the same images give
/// the same ranges.
/// </summary>
public static class Calibration
{
    public const int Bins = 4096;
    const int BatchImages = 16;

    public sealed record Ranges(IReadOnlyDictionary<string, TensorRange> MinMax, IReadOnlyDictionary<string, TensorRange> Percentile);

    public static Ranges Measure(string model, string? profile, byte[] bytes, IReadOnlyList<string> tensors, ImageSet images,
        double percentile, Action<string> progress)
    {
        var existing = OnnxGraphDocument.Parse(bytes).Outputs.ToHashSet(StringComparer.Ordinal);
        var fragment = new OnnxModelBuilder();
        foreach (var t in tensors.Where(t => !existing.Contains(t))) fragment.OutputOfAnyShape(t, OnnxTypes.Float);
        var probe = OnnxFileEditor.Merge(bytes, fragment, _ => false);
        using var predictor = new OnnxPredictor(model, profile, probe);
        var prep = predictor.Preprocessor;

        var (min, max) = (new float[tensors.Count], new float[tensors.Count]);
        Array.Fill(min, float.PositiveInfinity);
        Array.Fill(max, float.NegativeInfinity);
        var done = 0;
        foreach (var outputs in Batches(predictor, images, prep, tensors))
        {
            Parallel.For(0, tensors.Count, t =>
            {
                foreach (var v in outputs[t])
                {
                    if (v < min[t]) min[t] = v;
                    if (v > max[t]) max[t] = v;
                }
            });
            done += Math.Min(BatchImages, images.Count - done);
            progress($"calibration, pass 1 of 2 (min/max): {done}/{images.Count} images");
        }
        var minMax = new Dictionary<string, TensorRange>(StringComparer.Ordinal);
        for (var t = 0; t < tensors.Count; t++)
        {
            if (!float.IsFinite(min[t]) || !float.IsFinite(max[t]))
                throw new InvalidDataException($"Tensor '{tensors[t]}' took non-finite values on the calibration images; it cannot be quantized.");
            minMax[tensors[t]] = new TensorRange(min[t], max[t]);
        }

        var histograms = new long[tensors.Count][];
        for (var t = 0; t < tensors.Count; t++) histograms[t] = new long[Bins];
        done = 0;
        foreach (var outputs in Batches(predictor, images, prep, tensors))
        {
            Parallel.For(0, tensors.Count, t =>
            {
                var (lo, width) = (min[t], (max[t] - min[t]) / Bins);
                var h = histograms[t];
                foreach (var v in outputs[t])
                    h[width > 0 ? Math.Clamp((int)((v - lo) / width), 0, Bins - 1) : 0]++;
            });
            done += Math.Min(BatchImages, images.Count - done);
            progress($"calibration, pass 2 of 2 (histograms): {done}/{images.Count} images");
        }
        var central = new Dictionary<string, TensorRange>(StringComparer.Ordinal);
        for (var t = 0; t < tensors.Count; t++)
            central[tensors[t]] = PercentileRange(histograms[t], min[t], max[t], percentile);
        return new Ranges(minMax, central);
    }

    /// <summary>The range from the (100 - p)th to the pth percentile of a histogram over [min, max]: the lower edge of
    /// the bin where the lower tail ends and the upper edge of the bin where the upper tail begins.</summary>
    public static TensorRange PercentileRange(long[] histogram, float min, float max, double percentile)
    {
        var total = histogram.Sum();
        var tail = (long)Math.Floor(total * (100 - percentile) / 100);
        var width = (max - min) / histogram.Length;
        int lower = 0, upper = histogram.Length - 1;
        for (long below = 0; lower < histogram.Length - 1 && below + histogram[lower] <= tail; lower++) below += histogram[lower];
        for (long above = 0; upper > 0 && above + histogram[upper] <= tail; upper--) above += histogram[upper];
        return upper < lower ? new TensorRange(min, max)
            : new TensorRange(Math.Max(min, min + lower * width), Math.Min(max, min + (upper + 1) * width));
    }

    static IEnumerable<float[][]> Batches(OnnxPredictor predictor, ImageSet images, ImagePreprocessor prep, IReadOnlyList<string> tensors)
    {
        foreach (var (rows, _, count) in BatchLoader.Crops(images, prep, [prep.Center], BatchImages))
            yield return predictor.RunOutputs(rows, count, tensors);
    }
}
