using System.Numerics.Tensors;
using System.Security.Cryptography;
using System.Text.Json;
using AlexNet.Model;
using Microsoft.ML.OnnxRuntime;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace AlexNet.Api.Inference;

/// <summary>Thrown when Inference:Provider is Cuda and CUDA does not start: the service then stays up, not ready.</summary>
public sealed class CudaUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>The file loads in ONNX Runtime but breaks <see cref="OnnxContract"/> (names, shapes, labels vs width).</summary>
public sealed class ModelContractException(string message) : Exception(message);

/// <summary>
/// The one <see cref="InferenceSession"/> of the process (Run is thread-safe, microsoft/onnxruntime#114) and what
/// its file promises. Loading checks the file against <see cref="OnnxContract"/>: the input and output names and
/// shapes, and that the labels in the metadata match the width of <c>probabilities</c>. Errors name the path.
/// <para>Reference-counted, because POST /api/model/reload swaps models while requests run: the holder
/// (<see cref="ModelHost"/>) owns one reference and drops it with <see cref="Dispose"/>; every in-flight use takes
/// one (<see cref="TryAddRef"/>, <see cref="Release"/>). The session is disposed when the last one goes.</para>
/// </summary>
public sealed class OnnxClassifier : IDisposable
{
    readonly InferenceSession _session;
    readonly RunOptions _runOptions = new();   // read-only after creation, shared by concurrent Runs
    int _references = 1;   // the holder's
    int _disposed;
    readonly string[] _inputNames, _outputNames;
    readonly InputTransform? _transform;   // a profiled model's normalisation and channel order
    readonly bool _softmax;                // a profiled model that outputs logits
    readonly bool _oneRowAtATime;          // an input whose batch dimension is fixed at 1 (Model Zoo files)

    OnnxClassifier(InferenceSession session, ModelInfo model, string provider, bool oneRowAtATime)
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
            _outputNames = [OnnxContract.Probabilities, OnnxContract.Features];
        }
    }

    public ModelInfo Model { get; }
    /// <summary>"CPU" or "CUDA".</summary>
    public string Provider { get; }
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
        var (session, provider) = CreateSession(path, options, log);
        try
        {
            if (profile is null) return new OnnxClassifier(session, Check(session, path, fingerprint), provider, oneRowAtATime: false);
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
    /// A model without a feature output (FeatureDim 0) writes no features.</remarks>
    public void Run(float[] input, int n, float[] probabilities, float[] features)
    {
        var (row, c, d) = (RowLength, Model.Classes, Model.FeatureDim);
        if (n < 1 || input.Length < n * row)
            throw new ArgumentException($"{n} rows need {n * row} floats; the buffer holds {input.Length}.", nameof(input));
        if (probabilities.Length < n * c || features.Length < n * d)
            throw new ArgumentException($"{n} rows give {n * c} probabilities and {n * d} features; the buffers hold {probabilities.Length} and {features.Length}.");
        _transform?.Apply(input, n);
        if (_oneRowAtATime)
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

    void RunRows(Memory<float> input, int n, Memory<float> scores, Memory<float> features)
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
        _session.Run(_runOptions, _inputNames, [x], _outputNames, [p, f]);
    }

    /// <summary>Takes a reference for one in-flight use; false once the session is gone (read the holder again).</summary>
    public bool TryAddRef()
    {
        var n = Volatile.Read(ref _references);
        while (n > 0)
        {
            var seen = Interlocked.CompareExchange(ref _references, n + 1, n);
            if (seen == n) return true;
            n = seen;
        }
        return false;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0) return;
        _session.Dispose();
        _runOptions.Dispose();
    }

    /// <summary>Drops the holder's reference (once); the session goes when in-flight uses end.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) Release();
    }

    public static string Fingerprint(string path)
    {
        using var stream = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// All graph optimisations (constant folding, Conv+Relu fusion, NCHWc layouts), one intra-op thread per core and
    /// no inter-op pool (the graph is a chain, so ORT_SEQUENTIAL loses nothing), memory patterns and the CPU arena (the
    /// batch sizes repeat, so buffers are planned once per size and reused). Spinning is off by default: the pool's
    /// threads would otherwise busy-wait after every parallel section, burning the cores that decode the next uploads.
    /// </summary>
    static SessionOptions NewOptions(InferenceOptions options)
    {
        var o = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = options.IntraOpThreads > 0 ? options.IntraOpThreads : Environment.ProcessorCount,
            InterOpNumThreads = 1,
            EnableMemoryPattern = true,
            EnableCpuMemArena = true,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        o.AddSessionConfigEntry("session.intra_op.allow_spinning", options.IntraOpSpinning ? "1" : "0");
        return o;
    }

    /// <summary>
    /// CUDA is listed by GetAvailableProviders even without a GPU (notes/onnxruntime-gpu.md), so it is tried, not
    /// looked up. When the CUDA session fails, a CPU session tells a CUDA fault (CPU loads) from a bad file (CPU fails too).
    /// </summary>
    static (InferenceSession Session, string Provider) CreateSession(string path, InferenceOptions options, ILogger log)
    {
        Exception? cudaError = null;
        if (options.Provider != ExecutionProvider.Cpu)
        {
            try
            {
                using var cuda = NewOptions(options);
                cuda.AppendExecutionProvider_CUDA(options.CudaDeviceId);
                return (new InferenceSession(path, cuda), "CUDA");
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
            {
                cudaError = e;
            }
        }
        InferenceSession cpuSession;
        try
        {
            using var cpu = NewOptions(options);
            cpuSession = new InferenceSession(path, cpu);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{path}: ONNX Runtime cannot load this model: {e.Message}", e);
        }
        if (cudaError is null) return (cpuSession, "CPU");
        if (options.Provider == ExecutionProvider.Cuda)
        {
            cpuSession.Dispose();
            throw new CudaUnavailableException(
                $"Inference:Provider is Cuda but CUDA did not start on device {options.CudaDeviceId}: {cudaError.Message} " +
                "(this build needs the CUDA 13 runtime and cuDNN 9; set Inference:Provider to Auto or Cpu to run on the CPU).", cudaError);
        }
        log.LogWarning("CUDA did not start ({Error}); Inference:Provider is Auto, so the CPU runs the model.", cudaError.Message);
        return (cpuSession, "CPU");
    }

    static ModelInfo Check(InferenceSession session, string path, string fingerprint)
    {
        ModelContractException Bad(string what) => new($"{path}: {what} (see OnnxContract: input '{OnnxContract.Input}' (N, 3, S, S), " +
            $"outputs '{OnnxContract.Probabilities}' (N, classes) and '{OnnxContract.Features}' (N, D), labels in metadata '{OnnxContract.Keys.Labels}').");

        if (!session.InputMetadata.TryGetValue(OnnxContract.Input, out var input))
            throw Bad($"no input named '{OnnxContract.Input}'; it has [{string.Join(", ", session.InputMetadata.Keys)}]");
        var inDims = input.Dimensions;
        if (input.ElementType != typeof(float) || inDims.Length != 4 || inDims[1] != 3 || inDims[2] <= 0 || inDims[2] != inDims[3])
            throw Bad($"input '{OnnxContract.Input}' is {input.ElementType.Name} [{string.Join(", ", inDims)}], expected float (N, 3, S, S)");
        var width = OutputWidth(session, OnnxContract.Probabilities, Bad);
        var featureDim = OutputWidth(session, OnnxContract.Features, Bad);

        var meta = session.ModelMetadata.CustomMetadataMap;
        var labels = Json<string[]>(meta, OnnxContract.Keys.Labels, Bad) ?? throw Bad($"no '{OnnxContract.Keys.Labels}' in the metadata");
        if (labels.Length != width)
            throw Bad($"{labels.Length} labels in '{OnnxContract.Keys.Labels}' but '{OnnxContract.Probabilities}' has {width} columns");
        var synsets = Json<string[]>(meta, OnnxContract.Keys.Synsets, Bad);
        if (synsets is not null && synsets.Length != labels.Length)
            throw Bad($"{synsets.Length} synsets in '{OnnxContract.Keys.Synsets}' for {labels.Length} labels");

        var inputSize = Int(meta, OnnxContract.Keys.InputSize, Bad) ?? inDims[2];
        if (inputSize != inDims[2])
            throw Bad($"'{OnnxContract.Keys.InputSize}' says {inputSize} but the input is {inDims[2]}x{inDims[3]}");
        // The paper's 256 for 224 when the file doesn't say.
        var resizeSize = Int(meta, OnnxContract.Keys.ResizeSize, Bad) ?? (int)Math.Round(inputSize * 256.0 / 224);
        if (resizeSize < inputSize)
            throw Bad($"'{OnnxContract.Keys.ResizeSize}' ({resizeSize}) is smaller than the input size ({inputSize})");
        var provenance = Json<JsonElement?>(meta, OnnxContract.Keys.Provenance, Bad);
        meta.TryGetValue(OnnxContract.Keys.Preset, out var preset);

        return new ModelInfo(path, fingerprint, preset, inputSize, resizeSize, width, featureDim, labels,
            [.. labels.Select((_, i) => synsets is null || string.IsNullOrWhiteSpace(synsets[i]) ? null : synsets[i])],
            provenance, new Dictionary<string, string>(meta));
    }

    internal static int OutputWidth(InferenceSession session, string name, Func<string, ModelContractException> bad)
    {
        if (!session.OutputMetadata.TryGetValue(name, out var output))
            throw bad($"no output named '{name}'; it has [{string.Join(", ", session.OutputMetadata.Keys)}]");
        var dims = output.Dimensions;
        if (output.ElementType != typeof(float) || dims.Length != 2 || dims[1] <= 0)
            throw bad($"output '{name}' is {output.ElementType.Name} [{string.Join(", ", dims)}], expected float (N, width)");
        return dims[1];
    }

    static T? Json<T>(Dictionary<string, string> meta, string key, Func<string, ModelContractException> bad)
    {
        if (!meta.TryGetValue(key, out var json)) return default;
        try
        {
            return JsonSerializer.Deserialize<T>(json);
        }
        catch (JsonException e)
        {
            throw bad($"metadata '{key}' is not valid JSON of {typeof(T).Name}: {e.Message}");
        }
    }

    static int? Int(Dictionary<string, string> meta, string key, Func<string, ModelContractException> bad)
    {
        if (!meta.TryGetValue(key, out var text)) return null;
        return int.TryParse(text, out var value) && value > 0 ? value : throw bad($"metadata '{key}' is '{text}', expected a positive integer");
    }
}
