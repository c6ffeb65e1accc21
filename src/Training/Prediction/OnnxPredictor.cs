using System.Numerics.Tensors;
using System.Text.Json;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using Microsoft.ML.OnnxRuntime;

namespace AlexNet.Training.Prediction;

/// <summary>
/// An exported .onnx file (or a third-party one with a <see cref="ModelProfile"/>) on ONNX Runtime's CPU provider with
/// the service's session settings (src/Api/Inference/OnnxSessions.NewOptions: all graph optimisations, sequential
/// execution, one intra-op thread per core, memory patterns and the CPU arena, no spinning), so that a folder
/// predicted here gets the answers /api/classify gives. Rows in are RGB pixels 0..255, (n, 3, S, S), as
/// <see cref="ImagePreprocessor.WriteCrop"/> writes them; a profile's normalisation is applied here, as the service does.
/// </summary>
public sealed class OnnxPredictor : IDisposable
{
    readonly InferenceSession _session;
    readonly SessionOptions _options;
    readonly string _input, _scores;
    readonly InputTransform? _transform;
    readonly bool _softmax, _oneRowAtATime;

    /// <param name="graph">The bytes to load instead of the file's (the file and its profile still name the contract):
    /// the quantizer's calibration graph, which adds outputs.</param>
    public OnnxPredictor(string modelPath, string? profilePath, byte[]? graph = null)
    {
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"Model file not found: {modelPath}", modelPath);
        profilePath ??= File.Exists(ModelProfile.SidecarPath(modelPath)) ? ModelProfile.SidecarPath(modelPath) : null;   // as the service looks
        var profile = profilePath is null ? null : ModelProfile.Load(profilePath);
        _options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = Environment.ProcessorCount,
            InterOpNumThreads = 1,
            EnableMemoryPattern = true,
            EnableCpuMemArena = true,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        _options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        try
        {
            _session = graph is null ? new InferenceSession(modelPath, _options) : new InferenceSession(graph, _options);
        }
        catch (OnnxRuntimeException e)
        {
            _options.Dispose();
            throw new InvalidDataException($"{modelPath}: ONNX Runtime cannot load this model: {e.Message}", e);
        }
        if (profile is not null)
        {
            (_input, _scores, _transform, _softmax) = (profile.Input, profile.Scores, profile.Transform(), profile.ScoresAre == ScoreKind.Logits);
            Features = profile.Features;
            var labelsPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(profilePath!))!, profile.Labels);
            Labels = LabelSet.Load(labelsPath);
            Preprocessor = new ImagePreprocessor(profile.EffectiveResizeSize, profile.InputSize, profile.Resize);
        }
        else
        {
            (_input, _scores, Features) = (OnnxContract.Input, OnnxContract.Probabilities, OnnxContract.Features);
            var meta = _session.ModelMetadata.CustomMetadataMap;
            if (!meta.TryGetValue(OnnxContract.Keys.Labels, out var labels))
                throw new InvalidDataException($"{modelPath} has no '{OnnxContract.Keys.Labels}' metadata: export it with alexnet-train export, " +
                    "or describe it with --profile.");
            var synsets = meta.TryGetValue(OnnxContract.Keys.Synsets, out var s) ? JsonSerializer.Deserialize<string[]>(s) : null;
            Labels = new LabelSet(JsonSerializer.Deserialize<string[]>(labels)!, synsets);
            var inputSize = meta.TryGetValue(OnnxContract.Keys.InputSize, out var i) ? int.Parse(i) : _session.InputMetadata[_input].Dimensions[2];
            var resizeSize = meta.TryGetValue(OnnxContract.Keys.ResizeSize, out var r) ? int.Parse(r) : (int)Math.Round(inputSize * 256.0 / 224);
            Preprocessor = new ImagePreprocessor(resizeSize, inputSize);   // the service's ModelInfo.Preprocessor for such a file
        }
        if (!_session.InputMetadata.TryGetValue(_input, out var input) || !_session.OutputMetadata.ContainsKey(_scores))
            throw new InvalidDataException($"{modelPath} has no input '{_input}' or no output '{_scores}'.");
        _oneRowAtATime = input.Dimensions[0] == 1;   // a batch dimension fixed at 1 (Model Zoo files)
    }

    public LabelSet Labels { get; }
    public ImagePreprocessor Preprocessor { get; }
    /// <summary>The contract's names: the input, the scores and (when the model has them) the features.</summary>
    public string InputName => _input;
    public string ScoresName => _scores;
    public string? Features { get; }
    /// <summary>Whether the scores are logits to which softmax is applied here (a profile's <c>scoresAre: logits</c>).</summary>
    public bool ScoresAreLogits => _softmax;
    public int Classes => Labels.Count;

    /// <summary>Probabilities (n, classes) for n rows; <paramref name="rows"/> is overwritten by a profile's normalisation.</summary>
    public float[] Run(float[] rows, int n)
    {
        var row = Preprocessor.CropLength;
        _transform?.Apply(rows.AsSpan(0, n * row), n);
        var probabilities = new float[n * Classes];
        if (_oneRowAtATime)
            for (var i = 0; i < n; i++) RunRows(rows.AsMemory(i * row, row), 1, probabilities.AsMemory(i * Classes, Classes));
        else RunRows(rows.AsMemory(0, n * row), n, probabilities);
        if (_softmax)
            for (var i = 0; i < n; i++) TensorPrimitives.SoftMax(probabilities.AsSpan(i * Classes, Classes), probabilities.AsSpan(i * Classes, Classes));
        return probabilities;
    }

    /// <summary>Named outputs (each row-major, in the order asked) for n rows; <paramref name="rows"/> is overwritten by a
    /// profile's normalisation, as in <see cref="Run"/>; scores come out as the graph writes them.</summary>
    public float[][] RunOutputs(float[] rows, int n, IReadOnlyList<string> outputs)
    {
        var row = Preprocessor.CropLength;
        _transform?.Apply(rows.AsSpan(0, n * row), n);
        var parts = outputs.Select(_ => new List<float>()).ToArray();
        var s = Preprocessor.InputSize;
        for (var start = 0; start < n; start += _oneRowAtATime ? 1 : n)
        {
            var count = _oneRowAtATime ? 1 : n;
            using var x = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, rows.AsMemory(start * row, count * row), [count, 3, s, s]);
            using var run = new RunOptions();
            using var results = _session.Run(run, [_input], [x], [.. outputs]);
            for (var o = 0; o < outputs.Count; o++) parts[o].AddRange(results[o].GetTensorDataAsSpan<float>());
        }
        return [.. parts.Select(p => p.ToArray())];
    }

    void RunRows(Memory<float> input, int n, Memory<float> scores)
    {
        var s = Preprocessor.InputSize;
        using var x = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, input, [n, 3, s, s]);
        using var p = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, scores, [n, Classes]);
        using var run = new RunOptions();
        _session.Run(run, [_input], [x], [_scores], [p]);
    }

    public void Dispose()
    {
        _session.Dispose();
        _options.Dispose();
    }
}
