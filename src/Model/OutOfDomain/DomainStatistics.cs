using System.Runtime.InteropServices;
using System.Text.Json;

namespace AlexNet.Model.OutOfDomain;

/// <summary>
/// What in-domain images look like in one group of <c>ood_stats</c> columns (a layer), and the distance of a row from
/// it: a Mahalanobis distance per column, divided by the column count. A group of at most
/// <see cref="DomainStatistics.LowRankMaxColumns"/> columns keeps its covariance's top <see cref="DomainStatistics.Rank"/>
/// principal directions (<see cref="Components"/>, <see cref="Eigenvalues"/>) and one variance for the rest
/// (<see cref="ResidualVariance"/>): the low-rank covariance Lee et al. (2018) use per layer, cut to fit the metadata.
/// A wider group (fc6, FC7) keeps only per-column deviations (<see cref="Std"/>): a rank-16 basis for 1024 columns would
/// triple the metadata, and on the demo model the diagonal did as well there.
/// </summary>
/// <param name="Scale">The group's distance at <see cref="DomainStatistics.GroupPercentile"/> on the calibration images,
/// at least 1 (the distance an average in-domain row has): dividing by it puts every layer in the same units.</param>
public sealed record StatisticGroupModel(string Name, int Length, float[] Mean, float[]? Std, float[]? Components, float[]? Eigenvalues,
    double ResidualVariance, float Scale)
{
    public bool LowRank => Components is not null;

    public double Distance(ReadOnlySpan<float> row)
    {
        double sum = 0;
        if (Std is { } std)
        {
            for (var d = 0; d < Length; d++)
            {
                var z = (row[d] - (double)Mean[d]) / std[d];
                sum += z * z;
            }
            return sum / Length;
        }
        Span<double> centred = Length <= 1024 ? stackalloc double[Length] : new double[Length];
        double norm = 0;
        for (var d = 0; d < Length; d++) { centred[d] = row[d] - (double)Mean[d]; norm += centred[d] * centred[d]; }
        var k = Eigenvalues!.Length;
        double projected = 0;
        for (var i = 0; i < k; i++)
        {
            var c = Components.AsSpan(i * Length, Length);
            double p = 0;
            for (var d = 0; d < Length; d++) p += c[d] * centred[d];
            sum += p * p / Eigenvalues[i];
            projected += p * p;
        }
        if (Length > k) sum += Math.Max(0, norm - projected) / ResidualVariance;
        return sum / Length;
    }
}

/// <summary>
/// What in-domain images look like in <c>ood_stats</c> (<see cref="DomainStatisticsGraph"/>), learnt from held-out
/// training images, and the score that compares an image with it: per group (a layer, or one kind of input statistic)
/// a Mahalanobis distance (<see cref="StatisticGroupModel"/>) divided by the group's scale; the image's raw score is
/// the largest of these, and <see cref="Score"/> divides it by <see cref="Threshold"/>, the raw score's
/// <see cref="Percentile"/>-th percentile on calibration images. A score above 1 means "unlike the training data".
/// Stored as JSON in the model's metadata (<see cref="MetadataKey"/>), arrays as base64 float32.
/// </summary>
public sealed class DomainStatistics
{
    public const string MetadataKey = "alexnet.ood";
    public const double DefaultPercentile = 97.5, DefaultGroupPercentile = 99;
    /// <summary>Principal directions kept per low-rank group.</summary>
    public const int Rank = 16;
    /// <summary>Groups this wide or narrower get a low-rank covariance; wider ones a diagonal one.</summary>
    public const int LowRankMaxColumns = 512;

    public required IReadOnlyList<StatisticGroupModel> Groups { get; init; }
    /// <summary>The raw score's <see cref="Percentile"/>-th percentile on the calibration images.</summary>
    public required double Threshold { get; init; }
    public double Percentile { get; init; } = DefaultPercentile;
    public double GroupPercentile { get; init; } = DefaultGroupPercentile;
    public int FitImages { get; init; }
    public int CalibrationImages { get; init; }
    /// <summary>Which images the statistics come from (for people; the service does not read it).</summary>
    public string Data { get; init; } = "";

    public int Dim => Groups.Sum(g => g.Length);

    /// <summary>The image's score: 1 at the threshold, above 1 unlike the training data. <paramref name="stats"/> is one
    /// row of <c>ood_stats</c>.</summary>
    public float Score(ReadOnlySpan<float> stats) => Score(stats, out _);

    /// <param name="group">The group whose scaled distance was largest: the layer that finds the image most unusual.</param>
    public float Score(ReadOnlySpan<float> stats, out string group)
    {
        if (stats.Length != Dim) throw new ArgumentException($"ood_stats has {stats.Length} columns; the statistics have {Dim}.");
        double worst = 0;
        var worstGroup = 0;
        var offset = 0;
        for (var g = 0; g < Groups.Count; g++)
        {
            var r = Groups[g].Distance(stats.Slice(offset, Groups[g].Length)) / Groups[g].Scale;
            if (r > worst) (worst, worstGroup) = (r, g);
            offset += Groups[g].Length;
        }
        group = Groups[worstGroup].Name;
        return (float)(worst / Threshold);
    }

    /// <summary>
    /// Learns the statistics: each group's mean and covariance from <paramref name="fit"/> (rows of <c>ood_stats</c>,
    /// row-major), the group scales and the threshold from <paramref name="calibration"/> (other images of the same
    /// kind, so the percentiles are those of images the means never saw). Variances are floored at 1e-4 of the group's
    /// mean variance (plus 1e-12), so a column that never varied in training (a colour statistic of grey images) flags
    /// any image where it does vary, without dividing by zero. Deterministic: the same rows give the same statistics.
    /// </summary>
    public static DomainStatistics Fit(IReadOnlyList<StatisticGroup> groups, ReadOnlySpan<float> fit, ReadOnlySpan<float> calibration,
        double percentile = DefaultPercentile, double groupPercentile = DefaultGroupPercentile, string data = "")
    {
        var dim = groups.Sum(g => g.Length);
        if (dim == 0 || fit.Length % dim != 0 || calibration.Length % dim != 0)
            throw new ArgumentException($"Rows of {dim} columns expected; got {fit.Length} and {calibration.Length} values.");
        var (nFit, nCal) = (fit.Length / dim, calibration.Length / dim);
        if (nFit < 2 || nCal < 1) throw new ArgumentException($"Need at least 2 fitting images and 1 calibration image; got {nFit} and {nCal}.");
        if (percentile is <= 0 or > 100 || groupPercentile is <= 0 or > 100)
            throw new ArgumentOutOfRangeException(nameof(percentile), "Percentiles are in (0, 100].");

        var models = new List<StatisticGroupModel>();
        var offset = 0;
        foreach (var g in groups)
        {
            var unscaled = FitGroup(g, fit, dim, offset, nFit);
            var distances = new double[nCal];
            for (var i = 0; i < nCal; i++) distances[i] = unscaled.Distance(calibration.Slice(i * dim + offset, g.Length));
            models.Add(unscaled with { Scale = (float)Math.Max(1, NearestRank(distances, groupPercentile)) });
            offset += g.Length;
        }
        var unthresholded = new DomainStatistics { Groups = models, Threshold = 1 };
        var raw = new double[nCal];
        for (var i = 0; i < nCal; i++) raw[i] = unthresholded.Score(calibration.Slice(i * dim, dim));
        return new DomainStatistics
        {
            Groups = models, Threshold = NearestRank(raw, percentile), Percentile = percentile, GroupPercentile = groupPercentile,
            FitImages = nFit, CalibrationImages = nCal, Data = data,
        };
    }

    static StatisticGroupModel FitGroup(StatisticGroup g, ReadOnlySpan<float> rows, int dim, int offset, int n)
    {
        var len = g.Length;
        var mean = new double[len];
        for (var i = 0; i < n; i++)
        {
            var row = rows.Slice(i * dim + offset, len);
            for (var d = 0; d < len; d++) mean[d] += row[d];
        }
        for (var d = 0; d < len; d++) mean[d] /= n;
        var meanF = mean.Select(m => (float)m).ToArray();
        if (len > LowRankMaxColumns)
        {
            var variance = new double[len];
            for (var i = 0; i < n; i++)
            {
                var row = rows.Slice(i * dim + offset, len);
                for (var d = 0; d < len; d++) { var x = row[d] - mean[d]; variance[d] += x * x; }
            }
            for (var d = 0; d < len; d++) variance[d] /= n - 1;
            var floor = 1e-4 * variance.Average() + 1e-12;
            return new(g.Name, len, meanF, [.. variance.Select(v => (float)Math.Sqrt(v + floor))], null, null, 0, 1);
        }
        var cov = new double[len * len];   // row-major, upper triangle accumulated then mirrored
        var centred = new double[len];
        for (var i = 0; i < n; i++)
        {
            var row = rows.Slice(i * dim + offset, len);
            for (var d = 0; d < len; d++) centred[d] = row[d] - mean[d];
            for (var a = 0; a < len; a++)
            {
                var ca = centred[a];
                if (ca == 0) continue;
                var target = cov.AsSpan(a * len + a, len - a);
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd<double>(centred.AsSpan(a, len - a), ca, target, target);
            }
        }
        double trace = 0;
        for (var a = 0; a < len; a++)
        {
            for (var b = a; b < len; b++) cov[b * len + a] = cov[a * len + b] /= n - 1;
            trace += cov[a * len + a];
        }
        var k = Math.Min(Rank, len);
        var (values, vectors) = SymmetricEigen.Top(cov, len, k);
        var floorValue = 1e-4 * Math.Max(0, trace) / len + 1e-12;
        var components = vectors.Select(v => (float)v).ToArray();
        var eigen = values.Select(v => (float)Math.Max(v, floorValue)).ToArray();
        var residual = len > k ? Math.Max((trace - values.Sum()) / (len - k), floorValue) : 1;
        return new(g.Name, len, meanF, null, components, eigen, residual, 1);
    }

    /// <summary>The nearest-rank percentile: the smallest value with at least p% of the values at or below it.</summary>
    public static double NearestRank(IReadOnlyCollection<double> values, double p)
    {
        var sorted = values.Order().ToArray();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    public string ToJson() => JsonSerializer.Serialize(new Stored(1,
        [.. Groups.Select(g => new StoredGroup(g.Name, g.Length, B64(g.Mean), B64(g.Std), B64(g.Components), B64(g.Eigenvalues),
            g.ResidualVariance, g.Scale))],
        Threshold, Percentile, GroupPercentile, FitImages, CalibrationImages, Data), JsonOptions);

    static string? B64(float[]? values) => values is null ? null : Convert.ToBase64String(MemoryMarshal.AsBytes(values.AsSpan()));

    /// <summary>Reads <see cref="ToJson"/>'s form; throws <see cref="InvalidDataException"/> saying what is wrong.</summary>
    public static DomainStatistics FromJson(string json)
    {
        Stored s;
        try
        {
            s = JsonSerializer.Deserialize<Stored>(json, JsonOptions) ?? throw new InvalidDataException($"'{MetadataKey}' is null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{MetadataKey}' is not valid JSON: {e.Message}");
        }
        if (s.Version != 1) throw new InvalidDataException($"'{MetadataKey}' has version {s.Version}; this build reads version 1.");
        if (s.Groups is not { Length: > 0 } || !(s.Threshold > 0))
            throw new InvalidDataException($"'{MetadataKey}' has no groups or a threshold that is not positive ({s.Threshold}).");
        return new DomainStatistics
        {
            Groups = [.. s.Groups.Select(Group)], Threshold = s.Threshold, Percentile = s.Percentile, GroupPercentile = s.GroupPercentile,
            FitImages = s.FitImages, CalibrationImages = s.CalibrationImages, Data = s.Data ?? "",
        };
    }

    static StatisticGroupModel Group(StoredGroup g)
    {
        InvalidDataException Bad(string what) => new($"'{MetadataKey}': group '{g.Name}' ({g.Length} columns): {what}.");
        float[]? Floats(string? b64, string what)
        {
            if (b64 is null) return null;
            try
            {
                return MemoryMarshal.Cast<byte, float>(Convert.FromBase64String(b64)).ToArray();
            }
            catch (FormatException)
            {
                throw Bad($"{what} is not base64");
            }
        }
        var (mean, std, components, eigen) = (Floats(g.Mean, "mean"), Floats(g.Std, "std"), Floats(g.Components, "components"),
            Floats(g.Eigenvalues, "eigenvalues"));
        if (g.Length <= 0 || mean?.Length != g.Length) throw Bad($"{mean?.Length ?? 0} means");
        if (!(g.Scale >= 1)) throw Bad($"scale {g.Scale}, expected at least 1");
        if (std is not null)
        {
            if (std.Length != g.Length || std.Any(v => !(v > 0))) throw Bad("std must hold one positive value per column");
        }
        else if (components is null || eigen is not { Length: > 0 } || components.Length != eigen.Length * g.Length
                 || eigen.Any(v => !(v > 0)) || !(g.ResidualVariance > 0))
            throw Bad("needs std, or components, positive eigenvalues (one per component) and a positive residual variance");
        return new StatisticGroupModel(g.Name ?? "", g.Length, mean, std, std is null ? components : null, std is null ? eigen : null,
            g.ResidualVariance, g.Scale);
    }

    static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    sealed record StoredGroup(string? Name, int Length, string? Mean, string? Std, string? Components, string? Eigenvalues,
        double ResidualVariance, float Scale);

    sealed record Stored(int Version, StoredGroup[]? Groups, double Threshold, double Percentile, double GroupPercentile, int FitImages,
        int CalibrationImages, string? Data);
}
