using System.Diagnostics;
using AlexNet.Api;
using AlexNet.Api.Inference;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;

namespace AlexNet.Bench;

/// <summary>
/// The service's forward pass (<see cref="OnnxClassifier"/> with the service's session settings) in img/s per batch
/// size, checked against a plain ONNX Runtime session (basic optimisations only) on the same inputs; and the
/// in-process ceiling of the HTTP service: decode + preprocess + forward of real JPEGs with no HTTP.
/// </summary>
public static class ForwardBench
{
    public static OnnxClassifier Load(string model, InferenceOptions? options = null) =>
        OnnxClassifier.Load(model, options ?? new InferenceOptions { Provider = ExecutionProvider.Cpu }, NullLogger.Instance);

    public static void Run(string model, int[] batches, double seconds)
    {
        using var classifier = Load(model);
        using var plainOptions = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC };
        using var plain = new InferenceSession(model, plainOptions);
        var row = classifier.RowLength;
        var (c, d) = (classifier.Model.Classes, classifier.Model.FeatureDim);
        foreach (var n in batches)
        {
            var input = new float[n * row];
            var rng = new Random(n);
            for (var i = 0; i < input.Length; i++) input[i] = rng.Next(256);
            var (p, f) = (new float[n * c], new float[n * d]);
            var ips = n / Time(seconds, () => classifier.Run(input, n, p, f));
            // Same answers: a plain session (no fusion, no layout changes) on the same rows.
            var s = classifier.Model.InputSize;
            using var x = OrtValue.CreateTensorValueFromMemory(input, [n, 3, s, s]);
            using var runOptions = new RunOptions();
            using var reference = plain.Run(runOptions, [OnnxContract.Input], [x], [OnnxContract.Probabilities, OnnxContract.Features]);
            var rp = reference[0].GetTensorDataAsSpan<float>().ToArray();
            var rf = reference[1].GetTensorDataAsSpan<float>().ToArray();
            var agree = Enumerable.Range(0, n).Count(i => ArgMax(p.AsSpan(i * c, c)) == ArgMax(rp.AsSpan(i * c, c)));
            Console.WriteLine($"batch {n,3}: {ips,7:F1} img/s  {1000 * n / ips,7:F1} ms/batch  vs plain session: top-1 {agree}/{n}, " +
                $"max |dp| {MaxAbsDiff(p, rp):E1}, features rel L2 {Maths.RelativeL2(f, rf):E1}");
        }
    }

    /// <summary>Decode + Prepare + centre crop of the images (round robin) on all cores, then one forward per batch.</summary>
    public static double Pipeline(string model, string[] images, int batch, double seconds)
    {
        using var classifier = Load(model);
        var files = images.Select(File.ReadAllBytes).ToArray();
        var decoder = new SafeImageDecoder();
        var pre = new ImagePreprocessor(classifier.Model.ResizeSize, classifier.Model.InputSize);
        var row = classifier.RowLength;
        var input = new float[batch * row];
        var (p, f) = (new float[batch * classifier.Model.Classes], new float[batch * classifier.Model.FeatureDim]);
        var next = 0;
        void Step()
        {
            Parallel.For(0, batch, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
            {
                using var image = decoder.Decode(files[(next + i) % files.Length]);
                pre.WriteCrop(pre.Prepare(image), pre.Center, input.AsSpan(i * row, row));
            });
            next += batch;
            classifier.Run(input, batch, p, f);
        }
        var ips = batch / Time(seconds, Step);
        Console.WriteLine($"decode + preprocess + forward in process, batches of {batch}: {ips:F1} img/s");
        return ips;
    }

    static double Time(double seconds, Action step)
    {
        step();
        step();
        var sw = Stopwatch.StartNew();
        var count = 0;
        while (sw.Elapsed.TotalSeconds < seconds || count < 3) { step(); count++; }
        return sw.Elapsed.TotalSeconds / count;
    }

    static int ArgMax(ReadOnlySpan<float> x)
    {
        var best = 0;
        for (var i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        var m = 0f;
        for (var i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }
}

/// <summary>Resident memory of the model in this process: after loading, after the warm-up batches.</summary>
public static class MemoryBench
{
    public static void Run(string model, int maxBatch)
    {
        Console.WriteLine($"process start: {Rss()}");
        var options = new InferenceOptions { Provider = ExecutionProvider.Cpu };
        using var classifier = ForwardBench.Load(model, options);
        Console.WriteLine($"model loaded: {Rss()}");
        classifier.WarmUp(maxBatch);
        Console.WriteLine($"after batches of 1 and {maxBatch}: {Rss()}");
        for (var n = 1; n <= maxBatch; n++) classifier.Run(new float[n * classifier.RowLength], n);
        Console.WriteLine($"after every batch size 1..{maxBatch}: {Rss()}");
    }

    static string Rss()
    {
        var status = File.ReadAllLines("/proc/self/status");
        string Field(string name) => status.First(l => l.StartsWith(name + ":")).Split(':', 2)[1].Trim();
        return $"VmRSS {Field("VmRSS")}, VmHWM {Field("VmHWM")}";
    }
}
