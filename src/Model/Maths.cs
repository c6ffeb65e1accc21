using System.Numerics.Tensors;

namespace AlexNet.Model;

public readonly record struct Scored(int Index, float Score);

/// <summary>Top-k and distance maths shared by training, evaluation and serving.</summary>
public static class Maths
{
    /// <summary>The k largest scores, largest first; ties go to the lower index. k is clamped to the length.</summary>
    public static Scored[] TopK(ReadOnlySpan<float> scores, int k)
    {
        if (k < 0) throw new ArgumentOutOfRangeException(nameof(k), "k must not be negative.");
        k = Math.Min(k, scores.Length);
        var best = new List<Scored>(k + 1);
        for (var i = 0; i < scores.Length; i++)
        {
            var s = scores[i];
            if (best.Count == k && (k == 0 || !(s > best[^1].Score))) continue;
            var at = best.Count;
            while (at > 0 && s > best[at - 1].Score) at--;
            best.Insert(at, new Scored(i, s));
            if (best.Count > k) best.RemoveAt(best.Count - 1);
        }
        return [.. best];
    }

    /// <summary>Euclidean (L2) distance, the paper's similarity for FC7 features (section 4.2).</summary>
    public static float Euclidean(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => TensorPrimitives.Distance(a, b);

    /// <summary>||a - b|| / ||b||: the relative error used by parity tests.</summary>
    public static double RelativeL2(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double num = 0, den = 0;
        for (var i = 0; i < a.Length; i++) { double d = a[i] - b[i]; num += d * d; den += (double)b[i] * b[i]; }
        return Math.Sqrt(num / Math.Max(den, double.Epsilon));
    }
}
