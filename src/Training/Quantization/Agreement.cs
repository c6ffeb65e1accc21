using System.Numerics.Tensors;
using AlexNet.Model.Imaging;
using AlexNet.Training.Data;
using AlexNet.Training.Prediction;

namespace AlexNet.Training.Quantization;

/// <summary>How closely model B answers as model A on the same images: the share whose top-1 class is the same, the
/// cosine similarity of their features (mean and least), and, when the images are labelled, each model's top-1
/// accuracy. With several crops, an image's class comes from the mean of its crops' probabilities (the paper's
/// 10-crop), and the features of every crop are compared.</summary>
public sealed record Agreement(int Images, int SameTop1, double MeanCosine, double MinCosine, double? AccuracyA, double? AccuracyB)
{
    public double Top1Agreement => Images == 0 ? 0 : (double)SameTop1 / Images;

    public string Text => $"top-1 agreement {100 * Top1Agreement:F2}% ({SameTop1}/{Images}), feature cosine mean {MeanCosine:F4} (least {MinCosine:F4})" +
        (AccuracyA is { } a && AccuracyB is { } b ? $", top-1 accuracy {100 * a:F2}% -> {100 * b:F2}% ({100 * (b - a):+0.00;-0.00} points)" : "");

    const int BatchImages = 16;

    public static Agreement Measure(OnnxPredictor a, OnnxPredictor b, ImageSet images, IReadOnlyList<CropWindow> crops, bool labelled,
        Action<int>? progress = null)
    {
        var prep = a.Preprocessor;
        var classes = a.Classes;
        var withFeatures = a.Features is not null && b.Features is not null;
        string[] Outputs(OnnxPredictor p) => withFeatures ? [p.ScoresName, p.Features!] : [p.ScoresName];
        int same = 0, correctA = 0, correctB = 0, done = 0;
        double cosines = 0, least = 1;
        long compared = 0;
        foreach (var (rows, labels, count) in BatchLoader.Crops(images, prep, crops, BatchImages))
        {
            var n = count * crops.Count;
            var ra = a.RunOutputs((float[])rows.Clone(), n, Outputs(a));
            var rb = b.RunOutputs(rows, n, Outputs(b));
            for (var i = 0; i < count; i++)
            {
                var (ca, cb) = (Mean(ra[0], a.ScoresAreLogits, i, crops.Count, classes), Mean(rb[0], b.ScoresAreLogits, i, crops.Count, classes));
                var (ta, tb) = (TensorPrimitives.IndexOfMax(ca), TensorPrimitives.IndexOfMax(cb));
                if (ta == tb) same++;
                if (ta == labels[i]) correctA++;
                if (tb == labels[i]) correctB++;
            }
            if (withFeatures)
            {
                var d = ra[1].Length / n;
                for (var r = 0; r < n; r++)
                {
                    var fa = ra[1].AsSpan(r * d, d);
                    var fb = rb[1].AsSpan(r * d, d);
                    var (na, nb) = (TensorPrimitives.Norm(fa), TensorPrimitives.Norm(fb));
                    var c = na == 0 && nb == 0 ? 1.0 : na == 0 || nb == 0 ? 0.0 : TensorPrimitives.CosineSimilarity(fa, fb);
                    cosines += c;
                    least = Math.Min(least, c);
                    compared++;
                }
            }
            done += count;
            progress?.Invoke(done);
        }
        var total = images.Count;
        return new Agreement(total, same, compared == 0 ? double.NaN : cosines / compared, compared == 0 ? double.NaN : least,
            labelled ? (double)correctA / total : null, labelled ? (double)correctB / total : null);
    }

    /// <summary>Image i's probabilities averaged over its crops (softmax first where the scores are logits).</summary>
    static float[] Mean(float[] scores, bool logits, int image, int crops, int classes)
    {
        var mean = new float[classes];
        var p = new float[classes];
        for (var c = 0; c < crops; c++)
        {
            var row = scores.AsSpan((image * crops + c) * classes, classes);
            if (logits) TensorPrimitives.SoftMax(row, p); else row.CopyTo(p);
            TensorPrimitives.Add(mean, p, mean);
        }
        return mean;
    }
}
