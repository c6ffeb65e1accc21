using System.Numerics.Tensors;
using System.Security.Cryptography;
using System.Buffers;
using AlexNet.Model;
using AlexNet.Model.OutOfDomain;
using Microsoft.ML.OnnxRuntime;

namespace AlexNet.Api.Inference;

/// <summary>Thrown when Inference:Provider is Cuda and CUDA does not start: the service then stays up, not ready.</summary>
public sealed class CudaUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>The file loads in ONNX Runtime but breaks <see cref="OnnxContract"/> (names, shapes, labels vs width).</summary>
public sealed class ModelContractException(string message) : Exception(message);

/// <summary>
/// A model's <see cref="InferenceSession"/> (one per served model; Run is thread-safe, microsoft/onnxruntime#114)
/// and what its file promises. <see cref="Load"/> creates the session (<see cref="OnnxSessions"/>) and checks the file
/// (<see cref="ContractCheck"/> for our own files, <see cref="ProfileCheck"/> for a profiled third-party one); errors
/// name the path. Disposed by the <see cref="Serving.Generation"/> that serves it, once its last request ends.
/// </summary>
public sealed class OnnxClassifier : IDisposable
{
    readonly InferenceSession _session;
    readonly RunOptions _runOptions = new();   // read-only after creation, shared by concurrent Runs
    int _disposed;
    readonly string[] _inputNames, _outputNames;
    readonly InputTransform? _transform;   // a profiled model's normalisation and channel order
    readonly bool _softmax;                // a profiled model that outputs logits
    readonly bool _oneRowAtATime;          // an input whose batch dimension is fixed at 1 (Model Zoo files)

    OnnxClassifier(InferenceSession session, ModelInfo model, ExecutionProvider provider, bool oneRowAtATime)
    {
        _session = session;
        Model = model;
        Provider = provider;
        _oneRowAtATime = oneRowAtATime;
        if (model.Profile is { } profile)
        {
            _inputNames = [profile.Input];
            _outputNames = profile.Features is { } f ? [profile.Scores, f] : [profile.Scores];
            _transform = profile.Transform();
            _softmax = profile.ScoresAre == ScoreKind.Logits;
        }
        else
        {
            _inputNames = [OnnxContract.Input];
            _outputNames = model.DomainStats is null
                ? [OnnxContract.Probabilities, OnnxContract.Features]
                : [OnnxContract.Probabilities, OnnxContract.Features, DomainStatisticsGraph.Output];
        }
    }

    public ModelInfo Model { get; }
    /// <summary>Cpu or Cuda: what runs the model (<see cref="ExecutionProviders.Label"/> names it).</summary>
    public ExecutionProvider Provider { get; }
    /// <summary>Floats in one input row: 3 x InputSize x InputSize.</summary>
    public int RowLength => 3 * Model.InputSize * Model.InputSize;

    /// <summary>Loads and checks <paramref name="path"/>. Throws <see cref="FileNotFoundException"/> or
    /// <see cref="InvalidDataException"/> (ONNX Runtime cannot load it) or <see cref="ModelContractException"/> naming the
    /// path, or <see cref="CudaUnavailableException"/>.</summary>
    /// <param name="profilePath">A <see cref="ModelProfile"/> describing a third-party file, or null for a file that
    /// follows <see cref="OnnxContract"/>.</param>
    public static OnnxClassifier Load(string path, InferenceOptions options, ILogger log, string? profilePath = null)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"Model file not found: {path} (set Inference:ModelPath, or the environment variable Inference__ModelPath).", path);
        var profile = profilePath is null ? null : ModelProfile.Load(profilePath);   // before the session: a bad profile fails fast
        var fingerprint = Fingerprint(path);
        if (profile is not null) fingerprint += "+profile:" + profile.Hash();   // one file under two profiles answers differently
        var (session, provider) = OnnxSessions.Create(path, options, log);
        try
        {
            if (profile is null) return new OnnxClassifier(session, ContractCheck.Check(session, path, fingerprint), provider, oneRowAtATime: false);
            using var probeOptions = new RunOptions();
            var (model, oneRow) = ProfileCheck.Check(session, probeOptions, path, fingerprint, profile, profilePath!);
            return new OnnxClassifier(session, model, provider, oneRow);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>Runs (n, 3, S, S) rows; returns probabilities (n, classes) and features (n, FeatureDim), row-major.</summary>
    public (float[] Probabilities, float[] Features) Run(float[] input, int n)
    {
        var probabilities = new float[n * Model.Classes];
        var features = new float[n * Model.FeatureDim];
        Run(input, n, probabilities, features);
        return (probabilities, features);
    }

    /// <summary>
    /// Runs (n, 3, S, S) rows into the caller's buffers: probabilities (n, classes) and features (n, FeatureDim),
    /// row-major, from the start of each. ONNX Runtime reads and writes the managed arrays in place (pinned for the
    /// call), so a caller that reuses its buffers allocates nothing per batch.
    /// </summary>
    /// <remarks>For a profiled model (<see cref="ModelInfo.Profile"/>) the input rows are still RGB pixels 0..255: they
    /// are converted to the model's form in place (the caller's buffer is overwritten), and logits become probabilities.
    /// A model without a feature output (FeatureDim 0) writes no features. A model with out-of-domain statistics
    /// (<see cref="ModelInfo.DomainStats"/>) writes each row's score into <paramref name="oodScores"/> when one is given
    /// (1 is the threshold; the statistics' rows come from a pooled buffer).</remarks>
    public void Run(float[] input, int n, float[] probabilities, float[] features, float[]? oodScores = null)
    {
        var (row, c, d) = (RowLength, Model.Classes, Model.FeatureDim);
        if (n < 1 || input.Length < n * row)
            throw new ArgumentException($"{n} rows need {n * row} floats; the buffer holds {input.Length}.", nameof(input));
        if (probabilities.Length < n * c || features.Length < n * d)
            throw new ArgumentException($"{n} rows give {n * c} probabilities and {n * d} features; the buffers hold {probabilities.Length} and {features.Length}.");
        _transform?.Apply(input, n);
        if (Model.DomainStats is { } domain)
        {
            if (oodScores is not null && oodScores.Length < n)
                throw new ArgumentException($"{n} rows give {n} out-of-domain scores; the buffer holds {oodScores.Length}.", nameof(oodScores));
            var dim = domain.Dim;
            var stats = ArrayPool<float>.Shared.Rent(n * dim);
            try
            {
                RunRows(input.AsMemory(0, n * row), n, probabilities.AsMemory(0, n * c), features.AsMemory(0, n * d), stats.AsMemory(0, n * dim));
                if (oodScores is not null)
                    for (var i = 0; i < n; i++) oodScores[i] = domain.Score(stats.AsSpan(i * dim, dim));
            }
            finally
            {
                ArrayPool<float>.Shared.Return(stats);
            }
        }
        else if (_oneRowAtATime)
            for (var i = 0; i < n; i++) RunRows(input.AsMemory(i * row, row), 1, probabilities.AsMemory(i * c, c), features.AsMemory(i * d, d));
        else
            RunRows(input.AsMemory(0, n * row), n, probabilities.AsMemory(0, n * c), features.AsMemory(0, n * d));
        if (_softmax)
            for (var i = 0; i < n; i++)
            {
                var scores = probabilities.AsSpan(i * c, c);
                TensorPrimitives.SoftMax(scores, scores);
            }
    }

    void RunRows(Memory<float> input, int n, Memory<float> scores, Memory<float> features, Memory<float> oodStats = default)
    {
        var s = Model.InputSize;
        using var x = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input, [n, 3, s, s]);
        using var p = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, scores, [n, Model.Classes]);
        if (Model.FeatureDim == 0)
        {
            _session.Run(_runOptions, _inputNames, [x], _outputNames, [p]);
            return;
        }
        using var f = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, features, [n, Model.FeatureDim]);
        if (Model.DomainStats is not { } domain)
        {
            _session.Run(_runOptions, _inputNames, [x], _outputNames, [p, f]);
            return;
        }
        using var o = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, oodStats, [n, domain.Dim]);
        _session.Run(_runOptions, _inputNames, [x], _outputNames, [p, f, o]);
    }

    /// <summary>The first Run allocates and picks kernels; do it for a lone crop and a full batch before serving.</summary>
    public void WarmUp(int maxBatchSize)
    {
        foreach (var n in new[] { 1, maxBatchSize }.Distinct())
            Run(new float[n * RowLength], n);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _session.Dispose();
        _runOptions.Dispose();
    }

    public static string Fingerprint(string path)
    {
        using var stream = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
