using AlexNet.Model.Imaging;

namespace AlexNet.Training.Data;

/// <summary>
/// The paper's "fancy PCA" lighting (section 4.1): to every pixel add [p1 p2 p3][a1 l1, a2 l2, a3 l3]^T, with p and l
/// the eigenvectors and eigenvalues of the 3x3 covariance of RGB values (in 0..1 units) over the training set and
/// a_i ~ N(0, 0.1) drawn once per image per use. The offset is scaled by 255 because pixels here are 0..255.
/// </summary>
public sealed record PcaLighting(double[] EigenValues, double[,] EigenVectors, double AlphaStd = 0.1)
{
    /// <summary>The values everyone uses for ImageNet (fb.resnet.torch); columns are eigenvectors, rows R, G, B.</summary>
    public static PcaLighting ImageNet { get; } = new([0.2175, 0.0188, 0.0045], new[,]
    {
        { -0.5675, 0.7192, 0.4009 },
        { -0.5808, -0.0045, -0.8140 },
        { -0.5836, -0.6948, 0.4203 },
    });

    /// <summary>Per-channel offset in pixel units for the given alphas.</summary>
    public float[] Offset(ReadOnlySpan<double> alpha)
    {
        var rgb = new float[3];
        for (var c = 0; c < 3; c++)
        {
            double v = 0;
            for (var i = 0; i < 3; i++) v += EigenVectors[c, i] * alpha[i] * EigenValues[i];
            rgb[c] = (float)(255 * v);
        }
        return rgb;
    }

    /// <summary>Covariance of RGB (0..1) over a sample of the set, and its eigen-decomposition (Jacobi).</summary>
    public static PcaLighting FromData(ImageSet set, int maxImages = 5000)
    {
        var step = Math.Max(1, set.Count / maxImages);
        var sum = new double[3];
        var cross = new double[3, 3];
        long n = 0;
        for (var i = 0; i < set.Count; i += step)
        {
            var rgb = set.Rgb(i);
            for (var p = 0; p < rgb.Length; p += 3)
            {
                for (var a = 0; a < 3; a++)
                {
                    var va = rgb[p + a] / 255.0;
                    sum[a] += va;
                    for (var b = 0; b < 3; b++) cross[a, b] += va * (rgb[p + b] / 255.0);
                }
                n++;
            }
        }
        var cov = new double[3, 3];
        for (var a = 0; a < 3; a++)
            for (var b = 0; b < 3; b++) cov[a, b] = cross[a, b] / n - sum[a] / n * (sum[b] / n);
        var (values, vectors) = SymmetricEigen(cov);
        return new PcaLighting(values, vectors);
    }

    /// <summary>Eigenvalues (descending) and eigenvectors (columns) of a symmetric 3x3 matrix, by cyclic Jacobi.</summary>
    public static (double[] Values, double[,] Vectors) SymmetricEigen(double[,] m)
    {
        var a = (double[,])m.Clone();
        var v = new double[3, 3] { { 1, 0, 0 }, { 0, 1, 0 }, { 0, 0, 1 } };
        for (var sweep = 0; sweep < 50; sweep++)
        {
            var off = Math.Abs(a[0, 1]) + Math.Abs(a[0, 2]) + Math.Abs(a[1, 2]);
            if (off < 1e-15) break;
            for (var p = 0; p < 2; p++)
                for (var q = p + 1; q < 3; q++)
                {
                    if (Math.Abs(a[p, q]) < 1e-300) continue;
                    var theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
                    var t = Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    var c = 1 / Math.Sqrt(t * t + 1);
                    var s = t * c;
                    for (var k = 0; k < 3; k++)
                    {
                        var akp = a[k, p]; var akq = a[k, q];
                        a[k, p] = c * akp - s * akq; a[k, q] = s * akp + c * akq;
                    }
                    for (var k = 0; k < 3; k++)
                    {
                        var apk = a[p, k]; var aqk = a[q, k];
                        a[p, k] = c * apk - s * aqk; a[q, k] = s * apk + c * aqk;
                    }
                    for (var k = 0; k < 3; k++)
                    {
                        var vkp = v[k, p]; var vkq = v[k, q];
                        v[k, p] = c * vkp - s * vkq; v[k, q] = s * vkp + c * vkq;
                    }
                }
        }
        var order = new[] { 0, 1, 2 }.OrderByDescending(i => a[i, i]).ToArray();
        var values = order.Select(i => Math.Max(a[i, i], 0)).ToArray();
        var vectors = new double[3, 3];
        for (var r = 0; r < 3; r++)
            for (var c = 0; c < 3; c++) vectors[r, c] = v[r, order[c]];
        return (values, vectors);
    }
}

/// <summary>Training-time augmentation of one image: the paper's random crop, horizontal flip and PCA lighting.</summary>
public sealed class Augmenter(ImagePreprocessor prep, PcaLighting? lighting, bool flips = true)
{
    public ImagePreprocessor Preprocessor => prep;

    /// <summary>Writes one augmented crop of <paramref name="image"/> into <paramref name="chw"/>. All randomness
    /// comes from <paramref name="rng"/>, so a seed per (epoch, position) makes runs reproducible.</summary>
    public void Write(PreparedImage image, Random rng, Span<float> chw)
    {
        var max = prep.ResizeSize - prep.InputSize;
        var crop = new CropWindow(rng.Next(max + 1), rng.Next(max + 1), flips && rng.Next(2) == 1);
        prep.WriteCrop(image, crop, chw);
        if (lighting is null) return;
        Span<double> alpha = [Normal(rng) * lighting.AlphaStd, Normal(rng) * lighting.AlphaStd, Normal(rng) * lighting.AlphaStd];
        var offset = lighting.Offset(alpha);
        var plane = prep.InputSize * prep.InputSize;
        for (var c = 0; c < 3; c++)
            System.Numerics.Tensors.TensorPrimitives.Add(chw.Slice(c * plane, plane), offset[c], chw.Slice(c * plane, plane));
    }

    static double Normal(Random rng)   // Box-Muller
    {
        var u1 = 1.0 - rng.NextDouble();
        var u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
