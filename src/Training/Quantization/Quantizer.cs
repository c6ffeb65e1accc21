using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using AlexNet.Model;
using AlexNet.Model.Onnx;
using AlexNet.Model.Onnx.Quantization;
using AlexNet.Training.Data;
using AlexNet.Training.Prediction;
using AlexNet.Training.Reporting;

namespace AlexNet.Training.Quantization;

/// <summary>What quantize does: the model (and its profile, for a third-party file), the calibration images (a folder,
/// or Fashion-MNIST's held-out training images), how many calibrate and how many of the rest check, the method, and
/// where to write.</summary>
public sealed record QuantizeRequest(string Model, string? Profile, string Out, string? Calibration, string? FashionMnist,
    int Images = 500, int CheckImages = 1000, CalibrationMethod? Method = null, double Percentile = Quantizer.DefaultPercentile,
    int Holdout = 5000, int Seed = 42, int WeightBits = QdqWriter.ReducedWeightBits);

/// <summary>One candidate's check against the float model on images calibration did not see.</summary>
public sealed record QuantizeCandidate(CalibrationMethod Method, Agreement Check);

/// <summary>What the metadata key <c>alexnet.quantization</c> holds.</summary>
public sealed record QuantizationInfo(string Format, string Activations, string Weights, string Method, double? Percentile,
    string Calibration, int CalibrationImages, int QuantizedOps, string Parent, int CheckImages, double CheckTop1Agreement, double CheckFeatureCosine);

/// <summary>
/// Static post-training quantization of an ONNX model to int8 (<see cref="QdqPlan"/>, <see cref="Calibration"/>,
/// <see cref="QdqWriter"/>): both methods' models are written in memory and checked against the float model on
/// held-out images (top-1 agreement, feature cosine); the better one (or the one asked for) is saved, with its precision, method,
/// calibration set and check in the metadata. Nothing is written unless every step succeeded.
/// </summary>
public static class Quantizer
{
    /// <summary>The default percentile: the central 99.99% of each activation's values.</summary>
    public const double DefaultPercentile = 99.99;
    public const string Int8 = "int8";

    public static IReadOnlyList<QuantizeCandidate> Run(QuantizeRequest q, ITrainingReport report)
    {
        if (q.Images < 1) throw new ArgumentException($"--images is {q.Images}; give 1 or more.");
        if (q.Percentile is <= 50 or > 100) throw new ArgumentException($"--percentile is {q.Percentile}; give a value above 50 and at most 100.");
        if (!File.Exists(q.Model)) throw new FileNotFoundException($"Model file not found: {q.Model}", q.Model);
        var bytes = File.ReadAllBytes(q.Model);
        if (OnnxFileEditor.Metadata(bytes).TryGetValue(OnnxContract.Keys.Precision, out var precision) && precision == Int8)
            throw new InvalidDataException($"{q.Model} is already int8 ({OnnxContract.Keys.Precision}); quantize its float parent instead.");
        var profile = q.Profile ?? (File.Exists(ModelProfile.SidecarPath(q.Model)) ? ModelProfile.SidecarPath(q.Model) : null);
        using var parent = new OnnxPredictor(q.Model, profile);

        var (all, name) = ImageSource.Load(q.Calibration, q.FashionMnist, false, q.Holdout, q.Seed, parent.Preprocessor, report.Warn);
        var nCal = Math.Min(q.Images, all.Count);
        var calibration = all.Subset([.. Enumerable.Range(0, nCal)], "calibration");
        var rest = all.Count - nCal;
        var check = rest > 0 ? all.Subset([.. Enumerable.Range(nCal, Math.Min(q.CheckImages, rest))], "check") : calibration;
        if (rest == 0) report.Warn($"all {all.Count} images of {name} calibrate; the check below runs on the same images (give more images for a fair check)");

        var doc = OnnxGraphDocument.Parse(bytes);
        var plan = QdqPlan.For(doc);
        if (plan.QuantizedOps == 0) throw new InvalidDataException($"{q.Model} has no Conv or Gemm with float weights in the file: nothing to quantize.");
        report.Info($"quantizing {plan.QuantizedOps} Conv/Gemm nodes; calibrating {plan.Calibrated.Count} activations on {nCal} images of {name}");
        var ranges = Calibration.Measure(q.Model, profile, bytes, plan.Calibrated, calibration, q.Percentile, report.Info);

        var parentHash = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(bytes));
        var candidates = new List<QuantizeCandidate>();
        foreach (var method in new[] { CalibrationMethod.MinMax, CalibrationMethod.Percentile })
        {
            var probe = QdqWriter.Write(doc, plan, method == CalibrationMethod.Percentile ? ranges.Percentile : ranges.MinMax, [], q.WeightBits);
            using var quantized = new OnnxPredictor(q.Model, profile, probe);
            var agreement = Agreement.Measure(parent, quantized, check, [parent.Preprocessor.Center], labelled: false);
            candidates.Add(new QuantizeCandidate(method, agreement));
            report.Info($"{Describe(method, q.Percentile)}: on {check.Count} {(rest > 0 ? "held-out" : "calibration")} images against the float model: {agreement.Text}");
        }
        // The better: more top-1 answers kept, then features closer; a tie goes to min/max (nothing clipped).
        var better = candidates.OrderByDescending(c => c.Check.SameTop1).ThenByDescending(c => c.Check.MeanCosine).First();
        var chosen = candidates.First(c => c.Method == (q.Method ?? better.Method));
        report.Info($"better on these images: {Describe(better.Method, q.Percentile)}; writing {Describe(chosen.Method, q.Percentile)}" +
            (q.Method is null ? "" : " (as --method asks)"));
        var info = new QuantizationInfo("QDQ (QuantizeLinear/DequantizeLinear)", "uint8, per tensor, asymmetric",
            $"int8, per output channel, symmetric, {q.WeightBits}-bit range (±{(1 << (q.WeightBits - 1)) - 1})",
            chosen.Method.ToString().ToLowerInvariant(), chosen.Method == CalibrationMethod.Percentile ? q.Percentile : null, name, nCal,
            plan.QuantizedOps, parentHash, check.Count, Math.Round(chosen.Check.Top1Agreement, 6), Math.Round(chosen.Check.MeanCosine, 6));
        var output = QdqWriter.Write(doc, plan, chosen.Method == CalibrationMethod.Percentile ? ranges.Percentile : ranges.MinMax,
            [(OnnxContract.Keys.Precision, Int8), (OnnxContract.Keys.Quantization, JsonSerializer.Serialize(info, Json))], q.WeightBits);
        AtomicFile.Write(q.Out, s => s.Write(output));
        if (profile is not null) CopyProfile(profile, q.Out, report);
        report.Info($"{bytes.Length / 1048576.0:F1} MB -> {output.Length / 1048576.0:F1} MB");
        return candidates;
    }

    static string Describe(CalibrationMethod m, double percentile) => m == CalibrationMethod.Percentile
        ? $"percentile ({percentile.ToString(CultureInfo.InvariantCulture)})" : "min/max";

    /// <summary>A third-party file is served with its profile beside it: the quantized file gets a copy when its labels
    /// file resolves from there too.</summary>
    static void CopyProfile(string profile, string output, ITrainingReport report)
    {
        var target = ModelProfile.SidecarPath(output);
        if (Path.GetFullPath(target) == Path.GetFullPath(profile) || File.Exists(target)) return;
        var labels = ModelProfile.Load(profile).Labels;
        if (!File.Exists(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(target))!, labels)))
        {
            report.Warn($"{profile} names labels '{labels}', which is not beside {output}: copy the profile and its labels there to serve it");
            return;
        }
        File.Copy(profile, target);
        report.Info($"profile copied to {target}");
    }

    static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };
}
