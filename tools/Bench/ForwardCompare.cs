using System.Diagnostics;
using System.Numerics.Tensors;
using System.Text;
using System.Text.Json;
using AlexNet.Api;
using AlexNet.Api.Inference;
using AlexNet.Model;
using Microsoft.ML.OnnxRuntime;

namespace AlexNet.Bench;

/// <summary>
/// Two models of the same contract (fp32 and its int8 version) through the service's forward pass
/// (<see cref="ForwardBench.Load"/>), in rounds that interleave them (round r, batch b: A and B take turns in slices of
/// about a second, B first in odd rounds) so that a drifting load falls on both; img/s per batch is the median of the
/// rounds and B/A the median of the rounds' own ratios; the process's CPU time per image is reported beside it. B's answers are compared with A's on the same random rows (top-1 agreement, feature cosine), and
/// each model's rows are checked to be finite probabilities. With the model's <see cref="AlexNetSpec"/> (metadata
/// <c>alexnet.spec</c>) the forward's multiply-accumulates per second are set against the peak of the matching kernel
/// (<see cref="PeakBench"/>, measured before and after the rounds). <c>--profile</c> adds ONNX Runtime's per-operator
/// times, which name the kernels that actually ran after the graph optimisations.
/// </summary>
public static class ForwardCompare
{
    /// <returns>0, or 1 when a model gave a row that is not a probability vector or B agreed with A on fewer than
    /// <paramref name="minAgreement"/> of the rows.</returns>
    public static int Run(string[] models, int[] batches, double seconds, int rounds, double peakSeconds, bool profile, double minAgreement)
    {
        if (models.Length != 2) throw new ArgumentException("--models takes two files, A,B (e.g. fp32.onnx,int8.onnx).");
        using var a = ForwardBench.Load(models[0]);
        using var b = ForwardBench.Load(models[1]);
        if (a.RowLength != b.RowLength || a.Model.Classes != b.Model.Classes || a.Model.FeatureDim != b.Model.FeatureDim)
            throw new ArgumentException($"The two models differ in contract: input {a.Model.InputSize} vs {b.Model.InputSize}, " +
                $"classes {a.Model.Classes} vs {b.Model.Classes}, features {a.Model.FeatureDim} vs {b.Model.FeatureDim}.");
        var sides = new[] { new Side("A", models[0], a), new Side("B", models[1], b) };
        foreach (var s in sides)
            Console.WriteLine($"{s.Name}: {System.IO.Path.GetFileName(s.Path)}  precision {s.Precision} ({s.PrecisionSource}), " +
                $"{(s.Macs is { } m ? $"{m.Total / 1e6:F1} M MAC/img (conv {m.Conv / 1e6:F1} M + fc {m.Fc / 1e6:F1} M)" : "MAC/img unknown (no alexnet.spec)")}");
        Console.WriteLine("MAC/img counts conv1..conv5 and fc6..fc8 of the spec (output elements x kernel MACs, groups as written); " +
            "the LRN band, pooling, softmax and the quantize/dequantize steps are not counted.");

        var threads = Environment.ProcessorCount;
        var before = peakSeconds > 0 ? PeakBench.Measure(peakSeconds, threads) : [];

        var inputs = batches.ToDictionary(n => n, n =>
        {
            var x = new float[n * a.RowLength];
            var rng = new Random(n);
            for (var i = 0; i < x.Length; i++) x[i] = rng.Next(256);
            return x;
        });
        var rates = sides.ToDictionary(s => s.Name, _ => batches.ToDictionary(n => n, _ => new List<double>()));
        var cpuMs = sides.ToDictionary(s => s.Name, _ => batches.ToDictionary(n => n, _ => new List<double>()));   // process CPU per image
        var ratios = batches.ToDictionary(n => n, _ => new List<double>());
        var bad = 0;
        var (agree, rows, cosSum) = (0, 0, 0.0);
        foreach (var n in batches)   // answers (and the first run's allocations) before the clock
        {
            var (pa, fa) = a.Run((float[])inputs[n].Clone(), n);
            var (pb, fb) = b.Run((float[])inputs[n].Clone(), n);
            bad += BadRows(sides[0], pa, n) + BadRows(sides[1], pb, n);
            var (c, d) = (a.Model.Classes, a.Model.FeatureDim);
            for (var i = 0; i < n; i++)
            {
                agree += ArgMax(pa.AsSpan(i * c, c)) == ArgMax(pb.AsSpan(i * c, c)) ? 1 : 0;
                if (d > 0) cosSum += TensorPrimitives.CosineSimilarity(fa.AsSpan(i * d, d), fb.AsSpan(i * d, d));
            }
            rows += n;
        }
        for (var r = 0; r < rounds; r++)
        {
            foreach (var n in batches)
            {
                // Within a round the two models take turns in slices of about a second, so that the load's drift
                // over seconds falls on both; each model's img/s is its batches over its own time.
                var order = r % 2 == 0 ? sides : [sides[1], sides[0]];
                var steps = order.ToDictionary(s => s.Name, s =>
                {
                    var (p, f) = (new float[n * s.Classifier.Model.Classes], new float[n * s.Classifier.Model.FeatureDim]);
                    var input = inputs[n];
                    return (Action)(() => s.Classifier.Run(input, n, p, f));
                });
                var spent = order.ToDictionary(s => s.Name, _ => (Seconds: 0.0, Cpu: 0.0, Batches: 0));
                var slices = Math.Max(1, (int)Math.Round(seconds));
                for (var slice = 0; slice < slices; slice++)
                    foreach (var s in order)
                    {
                        var cpu = Environment.CpuUsage.TotalTime;
                        var sw = Stopwatch.StartNew();
                        var count = 0;
                        do { steps[s.Name](); count++; } while (sw.Elapsed.TotalSeconds < seconds / slices);
                        var (t, c, k) = spent[s.Name];
                        spent[s.Name] = (t + sw.Elapsed.TotalSeconds, c + (Environment.CpuUsage.TotalTime - cpu).TotalSeconds, k + count);
                    }
                var ips = order.ToDictionary(s => s.Name, s => n * spent[s.Name].Batches / spent[s.Name].Seconds);
                foreach (var s in order)
                {
                    rates[s.Name][n].Add(ips[s.Name]);
                    cpuMs[s.Name][n].Add(1000 * spent[s.Name].Cpu / (n * spent[s.Name].Batches));
                }
                ratios[n].Add(ips["B"] / ips["A"]);
                Console.WriteLine($"round {r + 1}, batch {n,3}: A {ips["A"],7:F1} img/s  B {ips["B"],7:F1} img/s  B/A {ips["B"] / ips["A"]:F2}  " +
                    $"CPU/img A {cpuMs["A"][n][^1]:F1} ms B {cpuMs["B"][n][^1]:F1} ms  " +
                    $"(load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]})");
            }
        }
        var after = peakSeconds > 0 ? PeakBench.Measure(peakSeconds, threads) : [];

        Console.WriteLine();
        Console.WriteLine($"median of {rounds} rounds, {seconds:F0} s per model and batch:");
        foreach (var n in batches)
        {
            var (ma, mb) = (Median(rates["A"][n]), Median(rates["B"][n]));
            Console.WriteLine($"batch {n,3}: A {ma,7:F1} img/s  B {mb,7:F1} img/s  B/A {Median(ratios[n]):F2} " +
                $"(rounds {ratios[n].Min():F2}-{ratios[n].Max():F2})" + Fractions(sides, before, after, ma, mb));
        }
        // CPU time per image hardly depends on other processes taking turns on the cores (wall time does): its
        // ratio is what B/A would be on a quiet machine, as far as the work parallelises alike.
        Console.WriteLine("process CPU time per image (median of rounds), and A's over B's:");
        foreach (var n in batches)
        {
            var (ca, cb) = (Median(cpuMs["A"][n]), Median(cpuMs["B"][n]));
            Console.WriteLine($"batch {n,3}: A {ca,7:F1} ms  B {cb,7:F1} ms  A/B {ca / cb:F2}");
        }
        if (peakSeconds > 0)
            foreach (var s in sides)
                if (Matching(s, before) is { } pb && Matching(s, after) is { } pa && pb.GmacPerSecond is { } g0 && pa.GmacPerSecond is { } g1)
                    Console.WriteLine($"{s.Name}'s peak ({pb.Name}, {threads} threads): {g0:F1} GMAC/s before the rounds, {g1:F1} after; fractions use the higher");
        Console.WriteLine($"B against A on the same {rows} random rows: top-1 agreement {agree}/{rows} ({100.0 * agree / rows:F1}%)" +
            (a.Model.FeatureDim > 0 ? $", mean feature cosine {cosSum / rows:F4}" : ""));
        Console.WriteLine(bad == 0 ? "every row of both models is a finite probability vector (sums to 1 within 1e-3)"
            : $"FAILED: {bad} rows are not finite probability vectors");

        if (profile)
            Profile(sides, batches.Max(), inputs[batches.Max()]);

        var ok = bad == 0 && agree >= minAgreement * rows;
        if (agree < minAgreement * rows)
            Console.WriteLine($"FAILED: top-1 agreement {(double)agree / rows:F3} is below --min-agreement {minAgreement}");
        return ok ? 0 : 1;
    }

    sealed class Side(string name, string path, OnnxClassifier classifier)
    {
        public string Name { get; } = name;
        public string Path { get; } = path;
        public OnnxClassifier Classifier { get; } = classifier;
        public Macs? Macs { get; } = classifier.Model.Metadata.TryGetValue(OnnxContract.Keys.Spec, out var json)
            ? CountMacs(JsonSerializer.Deserialize<AlexNetSpec>(json)!) : null;
        public (string Precision, string Source) Detected { get; } = DetectPrecision(classifier.Model, path);
        public string Precision => Detected.Precision;
        public string PrecisionSource => Detected.Source;
        public bool Int8 => Precision.Contains("int8", StringComparison.OrdinalIgnoreCase) || Precision.Contains("uint8", StringComparison.OrdinalIgnoreCase);
    }

    public sealed record Macs(long Conv, long Fc)
    {
        public long Total => Conv + Fc;
    }

    /// <summary>Multiply-accumulates of one image: for each Conv and Gemm, output elements x MACs per element.</summary>
    public static Macs CountMacs(AlexNetSpec s)
    {
        long Conv(int outChannels, int side, int kernel, int inChannelsPerGroup) => (long)outChannels * side * side * kernel * kernel * inChannelsPerGroup;
        var (o1, p1, p2) = (s.Conv1Out, s.Pool1Out, s.Pool2Out);
        var conv = Conv(2 * s.Conv1, o1, s.Conv1Kernel, 3)   // conv1 sees the image
            + Conv(2 * s.Conv2, p1, 5, s.Conv1)                // conv2: group 2, 5x5 pad 2
            + Conv(2 * s.Conv3, p2, 3, 2 * s.Conv2)            // conv3 sees both towers
            + Conv(2 * s.Conv4, p2, 3, s.Conv3)                // conv4, conv5: group 2, 3x3 pad 1
            + Conv(2 * s.Conv5, p2, 3, s.Conv4);
        var fc = (long)s.Fc6Inputs * 2 * s.Fc + (long)2 * s.Fc * 2 * s.Fc + (long)2 * s.Fc * s.Classes;
        return new Macs(conv, fc);
    }

    /// <summary>The metadata's precision when the quantizer wrote one (a key naming "precision"), else int8 when the
    /// graph holds QuantizeLinear/DequantizeLinear or QLinear operators, else fp32.</summary>
    static (string, string) DetectPrecision(ModelInfo model, string path)
    {
        var key = model.Metadata.Keys.FirstOrDefault(k => k.Contains("precision", StringComparison.OrdinalIgnoreCase));
        if (key is not null) return (model.Metadata[key], $"metadata {key}");
        var bytes = File.ReadAllBytes(path);
        foreach (var op in new[] { "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger" })
            if (bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(op)) >= 0) return ("int8", $"graph has {op}");
        return ("fp32", "no quantized operators in the graph");
    }

    static Peak? Matching(Side s, IReadOnlyList<Peak> peaks) => peaks.Count == 0 ? null : s.Int8 ? PeakBench.MlasInt8(peaks) : PeakBench.Fp32(peaks);

    static string Fractions(Side[] sides, IReadOnlyList<Peak> before, IReadOnlyList<Peak> after, double ipsA, double ipsB)
    {
        var text = new StringBuilder();
        foreach (var (s, ips) in new[] { (sides[0], ipsA), (sides[1], ipsB) })
        {
            if (s.Macs is not { } m || Matching(s, before)?.GmacPerSecond is not { } g0 || Matching(s, after)?.GmacPerSecond is not { } g1) continue;
            var gmac = m.Total * ips / 1e9;
            text.Append($"  {s.Name}: {gmac:F1} GMAC/s = {100 * gmac / Math.Max(g0, g1):F0}% of {Matching(s, before)!.Name}");
        }
        return text.ToString();
    }

    static int BadRows(Side s, float[] p, int n)
    {
        var c = s.Classifier.Model.Classes;
        var bad = 0;
        for (var i = 0; i < n; i++)
        {
            var row = p.AsSpan(i * c, c);
            var sum = TensorPrimitives.Sum(row);
            if (!float.IsFinite(sum) || Math.Abs(sum - 1) > 1e-3 || TensorPrimitives.Min(row) < 0) bad++;
        }
        return bad;
    }

    /// <summary>ONNX Runtime's profiler on a session with the service's settings: milliseconds per batch by operator
    /// type after optimisation (what actually ran: fused NCHWc convolutions, QLinearConv in NHWC, QGemm...).</summary>
    static void Profile(Side[] sides, int n, float[] input)
    {
        const int Runs = 8;
        var sessions = new List<(Side Side, InferenceSession Session)>();
        try
        {
            foreach (var side in sides)
            {
                using var options = OnnxSessions.NewOptions(new InferenceOptions { Provider = ExecutionProvider.Cpu });
                options.EnableProfiling = true;
                options.ProfileOutputPathPrefix = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"alexnet-bench-profile-{Environment.ProcessId}-{side.Name}");
                sessions.Add((side, new InferenceSession(side.Path, options)));
            }
            var size = sides[0].Classifier.Model.InputSize;
            using var x = OrtValue.CreateTensorValueFromMemory(input, [n, 3, size, size]);
            using var runOptions = new RunOptions();
            for (var i = 0; i < Runs + 1; i++)   // the models take turns, run by run, as in the rounds
                foreach (var (_, session) in sessions)
                {
                    using var outputs = session.Run(runOptions, [OnnxContract.Input], [x], [OnnxContract.Probabilities]);
                }
            foreach (var (side, session) in sessions) Report(side, session.EndProfiling(), n);
        }
        finally
        {
            foreach (var (_, session) in sessions) session.Dispose();
        }
    }

    static void Report(Side s, string file, int n)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(file));
            var events = doc.RootElement.EnumerateArray().ToArray();
            // The session's first run plans memory and packs weights: only nodes after its end are counted.
            var starts = events.Where(e => e.GetProperty("cat").GetString() == "Session" && e.GetProperty("name").GetString() == "model_run")
                .Select(e => (Ts: e.GetProperty("ts").GetDouble(), Dur: e.GetProperty("dur").GetDouble())).OrderBy(r => r.Ts).ToArray();
            var from = starts[0].Ts + starts[0].Dur;
            var byOp = new Dictionary<string, (double Us, HashSet<string> Nodes)>();
            var byNode = new Dictionary<string, (string Op, double Us)>();
            foreach (var e in events)
            {
                if (e.GetProperty("cat").GetString() != "Node" || e.GetProperty("ts").GetDouble() < from
                    || e.GetProperty("name").GetString() is not { } name || !name.EndsWith("_kernel_time")) continue;
                var op = e.GetProperty("args").GetProperty("op_name").GetString() ?? "?";
                var dur = e.GetProperty("dur").GetDouble();
                var (us, nodes) = byOp.TryGetValue(op, out var v) ? v : (0, new HashSet<string>());
                nodes.Add(name);
                byOp[op] = (us + dur, nodes);
                var node = name[..^"_kernel_time".Length];
                byNode[node] = (op, (byNode.TryGetValue(node, out var w) ? w.Us : 0) + dur);
            }
            var runs = starts.Length - 1;
            var total = byOp.Values.Sum(v => v.Us) / runs;
            Console.WriteLine($"{s.Name} ({System.IO.Path.GetFileName(s.Path)}), ONNX Runtime profile, batch {n}, mean of {runs} runs: " +
                $"{total / 1000:F1} ms of operator time per batch, by operator after optimisation:");
            foreach (var (op, (us, nodes)) in byOp.OrderByDescending(kv => kv.Value.Us))
                Console.WriteLine($"  {op,-28} {nodes.Count,3} nodes  {us / runs / 1000,8:F2} ms  {100 * us / runs / total,5:F1}%");
            // The nodes that carry the multiply-accumulates, one by one (fused names as ONNX Runtime gives them), and the rest.
            var macOps = new HashSet<string> { "Conv", "FusedConv", "QLinearConv", "ConvInteger", "Gemm", "FusedGemm", "QGemm", "MatMul", "FusedMatMul", "MatMulInteger", "QLinearMatMul", "MatMulIntegerToFloat" };
            var mac = byNode.Where(kv => macOps.Contains(kv.Value.Op)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToArray();
            Console.WriteLine("  by node: " + string.Join(", ", mac.Select(kv => $"{kv.Key} {kv.Value.Us / runs / 1000:F1}")) + " ms");
            var macMs = mac.Sum(kv => kv.Value.Us) / runs / 1000;
            Console.WriteLine($"  convolution and matrix nodes {macMs:F1} ms ({100 * macMs * 1000 / total:F0}%), everything else {total / 1000 - macMs:F1} ms");
        }
        finally
        {
            File.Delete(file);
        }
    }

    static double Median(List<double> x)
    {
        var s = x.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    static int ArgMax(ReadOnlySpan<float> x)
    {
        var best = 0;
        for (var i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }
}
