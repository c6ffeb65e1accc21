using System.Diagnostics;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Training.Export;
using AlexNet.Training.Networks;
using TorchSharp;
using static TorchSharp.torch;

namespace AlexNet.Training.Evaluation;

/// <summary>What the bench command measures: bare SGD steps, or with <paramref name="Forward"/> the forward speed per
/// batch size of <paramref name="Batches"/>. <paramref name="Classes"/> defaults to 1000 for paper, 10 for compact.</summary>
public sealed record BenchRequest(string Preset, int BatchSize, int Steps, int? Classes, bool Forward, int[] Batches);

/// <summary>Training speed without the data pipeline.</summary>
public static class Bench
{
    /// <summary>Runs the bench command's measurement and prints its lines to <paramref name="log"/>.</summary>
    public static void Run(BenchRequest q, Action<string> log)
    {
        var spec = AlexNetSpec.FromPreset(q.Preset, q.Classes ?? (q.Preset == "paper" ? 1000 : 10));
        if (q.Forward)
        {
            ForwardBench.Run(spec, q.Batches, 5, log);
            return;
        }
        var ips = TrainingStep(spec, q.BatchSize, q.Steps);
        log($"bare forward/backward/step: {ips:F1} img/s ({q.Preset}, batch {q.BatchSize}, {get_num_threads()} threads)");
    }

    /// <summary>img/s of forward, cross-entropy, backward and an SGD step on one in-memory batch, repeated.</summary>
    public static double TrainingStep(AlexNetSpec spec, int batch, int steps)
    {
        random.manual_seed(0);
        using var model = new AlexNetModule(spec, new Normalization([128f, 128f, 128f], [64f, 64f, 64f]));
        model.Initialize(InitScheme.Kaiming);
        model.train();
        var optimizer = optim.SGD(model.parameters(), 0.01, momentum: 0.9, weight_decay: 5e-4);
        var x = rand(batch, 3, spec.InputSize, spec.InputSize) * 255;
        var y = randint(0, spec.Classes, [batch]);
        var sw = new Stopwatch();
        for (var i = 0; i < steps + 3; i++)
        {
            if (i == 3) sw.Start();
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            nn.functional.cross_entropy(model.call(x), y).backward();
            optimizer.step();
        }
        return steps * batch / sw.Elapsed.TotalSeconds;
    }
}

public static class ForwardBench
{
    /// <summary>
    /// Raw forward img/s of the same weights in TorchSharp (eval, no grad) and in ONNX Runtime (the exported graph,
    /// CPU provider, the service's session settings: see AlexNet.Api's OnnxClassifier), per batch size, and whether
    /// the two give the same answers on the same inputs (top-1 agreement, largest probability difference). Returns
    /// rows of (batch, torch img/s, ort img/s).
    /// </summary>
    public static List<(int Batch, double Torch, double Ort)> Run(AlexNetSpec spec, int[] batches, double seconds, Action<string> log)
    {
        random.manual_seed(0);
        using var model = new AlexNetModule(spec, new Normalization([128f, 128f, 128f], [64f, 64f, 64f]));
        model.Initialize(InitScheme.Kaiming);
        model.eval();
        var path = Path.Combine(Path.GetTempPath(), $"alexnet-bench-{Environment.ProcessId}.onnx");
        OnnxExporter.Export(model, new LabelSet(Enumerable.Range(0, spec.Classes).Select(i => $"c{i}").ToArray()), new Provenance(), path);
        // As the service's OnnxClassifier sets them (Training references Model only, never the Api).
        using var options = new Microsoft.ML.OnnxRuntime.SessionOptions
        {
            GraphOptimizationLevel = Microsoft.ML.OnnxRuntime.GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = Microsoft.ML.OnnxRuntime.ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = Environment.ProcessorCount,
            InterOpNumThreads = 1,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(path, options);
        File.Delete(path);
        var rows = new List<(int, double, double)>();
        foreach (var n in batches)
        {
            var data = new float[n * 3 * spec.InputSize * spec.InputSize];
            new Random(n).NextSingles(data, 255);
            var x = tensor(data, [n, 3, spec.InputSize, spec.InputSize]);
            double torchIps = Measure(() =>
            {
                using var _ = no_grad();
                using var scope = NewDisposeScope();
                model.call(x);
            }, n, seconds);
            var input = new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(data, [n, 3, spec.InputSize, spec.InputSize]);
            var inputs = new[] { Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor(OnnxContract.Input, input) };
            double ortIps = Measure(() => { using var r = session.Run(inputs); }, n, seconds);
            // Same answers: TorchSharp's softmax against ONNX Runtime's probabilities on these rows.
            float[] torchProbabilities;
            using (no_grad())
            using (var scope = NewDisposeScope())
                torchProbabilities = nn.functional.softmax(model.call(x), 1).data<float>().ToArray();   // (n, classes)
            float[] ortProbabilities;
            using (var r = session.Run(inputs))
                ortProbabilities = [.. r.First(v => v.Name == OnnxContract.Probabilities).AsEnumerable<float>()];
            var c = spec.Classes;
            var agree = Enumerable.Range(0, n).Count(i => ArgMax(torchProbabilities.AsSpan(i * c, c)) == ArgMax(ortProbabilities.AsSpan(i * c, c)));
            var maxDiff = torchProbabilities.Zip(ortProbabilities, (a, b) => Math.Abs(a - b)).Max();
            log($"batch {n,3}: TorchSharp {torchIps,7:F1} img/s ({1000 * n / torchIps,6:F1} ms/batch)  ONNX Runtime {ortIps,7:F1} img/s ({1000 * n / ortIps,6:F1} ms/batch)  ratio {ortIps / torchIps:F2}  top-1 agree {agree}/{n}, max |dp| {maxDiff:E1}");
            rows.Add((n, torchIps, ortIps));
        }
        return rows;
    }

    static int ArgMax(ReadOnlySpan<float> x)
    {
        var best = 0;
        for (var i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    static double Measure(Action step, int images, double seconds)
    {
        step(); step();                                   // warm-up: allocations, kernels, caches
        var sw = Stopwatch.StartNew();
        var count = 0;
        while (sw.Elapsed.TotalSeconds < seconds || count < 3) { step(); count++; }
        return count * images / sw.Elapsed.TotalSeconds;
    }
}

static class RandomExtensions
{
    public static void NextSingles(this Random rng, float[] data, float scale)
    {
        for (var i = 0; i < data.Length; i++) data[i] = (float)rng.NextDouble() * scale;
    }
}
