using AlexNet.Api.Inference;
using AlexNet.Model;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Serving;

/// <summary>
/// Holds the <see cref="Generation"/> in service (a model and the gallery index of its vectors) and hands out leases
/// on it. Requests hold a <see cref="GenerationLease"/> for their whole life, so each one decodes, prepares, runs,
/// searches and answers with one generation; a replaced generation's session is disposed when its last lease ends.
/// <see cref="ModelLoader"/> builds generations (at start and on POST /api/model/reload) and publishes them here.
/// </summary>
public sealed class ServingHost(IOptions<InferenceOptions> options, IHostEnvironment env, ILogger<ServingHost> log) : IDisposable
{
    readonly InferenceOptions _options = options.Value;
    volatile Generation? _current;
    volatile string _status = "the model is loading";

    /// <summary>The generation now serving; for metadata. A request that uses it takes <see cref="Acquire"/>.</summary>
    public Generation? Current => _current;
    /// <summary>Why nothing serves yet, or why nothing ever will (<see cref="Fail"/>); null once a generation serves.</summary>
    public string? NotReadyReason => _current is null ? _status : null;
    /// <summary>Inference:ModelPath, resolved. The only file this service loads a model from.</summary>
    public string ModelPath { get; } = OptionsRegistration.Resolve(env, options.Value.ModelPath);

    /// <summary>The <see cref="ModelProfile"/> of a third-party model: Inference:ProfilePath when set, else
    /// <c>name.profile.json</c> beside <c>name.onnx</c> when there is one, else null (the file follows OnnxContract).
    /// Looked up at every load, so a reload picks up a profile put beside a new file.</summary>
    public string? ProfilePath => string.IsNullOrWhiteSpace(_options.ProfilePath)
        ? File.Exists(ModelProfile.SidecarPath(ModelPath)) ? ModelProfile.SidecarPath(ModelPath) : null
        : OptionsRegistration.Resolve(env, _options.ProfilePath);

    /// <summary>The generation now serving, kept alive until the lease is disposed. Throws a 503 refusal when none.</summary>
    public GenerationLease Acquire()
    {
        while (true)
        {
            var generation = _current ?? throw NotLoaded();
            if (generation.TryAddRef()) return new GenerationLease(generation);
            // Swapped out and released between the read and the reference: read the new one.
        }
    }

    /// <summary>The generation now serving (not leased: for metadata), or a 503 refusal naming the reason.</summary>
    public Generation Require() => _current ?? throw NotLoaded();

    RefusedException NotLoaded() => RefusedException.Overloaded(
        $"The model is not ready: {_status}. Check /health/ready.", _options.RetryAfterSeconds);

    /// <summary>Loads Inference:ModelPath, checked against the contract, without serving it. Throws like
    /// <see cref="OnnxClassifier.Load"/>.</summary>
    public OnnxClassifier LoadClassifier(string? profilePath) => OnnxClassifier.Load(ModelPath, _options, log, profilePath);

    /// <summary>Says what the start is doing (readiness shows it until a generation serves).</summary>
    public void Report(string status) => _status = status;

    /// <summary>The start failed for good: readiness says why, for as long as the process runs.</summary>
    public void Fail(string reason) => _status = reason;

    /// <summary>Serves <paramref name="next"/> from now on; the previous generation goes when its last lease ends.</summary>
    public void Publish(Generation next)
    {
        var previous = Interlocked.Exchange(ref _current, next);
        if (previous is not null) ApiMetrics.Provider.WithLabels(previous.Classifier.Provider.Label()).Set(0);
        ApiMetrics.Provider.WithLabels(next.Classifier.Provider.Label()).Set(1);
        ApiMetrics.Ready.Set(1);
        previous?.Dispose();
    }

    public void Dispose() => _current?.Dispose();
}
