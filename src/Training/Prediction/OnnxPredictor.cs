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

    public OnnxPredictor(string modelPath, string? profilePath)
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
            _session = new InferenceSession(modelPath, _options);
        }
        catch (OnnxRuntimeException e)
        {
            _options.Dispose();
            throw new InvalidDataException($"{modelPath}: ONNX Runtime cannot load this model: {e.Message}", e);
        }
        if (profile is not null)
        {
            (_input, _scores, _transform, _softmax) = (profile.Input, profile.Scores, profile.Transform(), profile.ScoresAre == ScoreKind.Logits);
            var labelsPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(profilePath!))!, profile.Labels);
            Labels = LabelSet.Load(labelsPath);
            Preprocessor = new ImagePreprocessor(profile.EffectiveResizeSize, profile.InputSize, profile.Resize);
        }
        else
        {
            (_input, _scores) = (OnnxContract.Input, OnnxContract.Probabilities);
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
