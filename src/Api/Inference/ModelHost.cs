using AlexNet.Api.Http;
using AlexNet.Model;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Inference;

/// <summary>
/// Loads the model when the host starts, before Kestrel listens. A missing or malformed file stops the start with
/// the path in the message. Inference:Provider=Cuda without a working CUDA does not: the service runs, says why in
/// /health/ready and answers inference with 503, rather than quietly running on the CPU.
/// <para>The classifier can be replaced while the service runs (<see cref="ModelReloader"/>): requests hold a
/// <see cref="ModelLease"/> for their whole life, so each one decodes, prepares, runs and answers with one model, and
/// the replaced session is disposed when its last request ends.</para>
/// </summary>
public sealed class ModelHost(IOptions<InferenceOptions> options, IHostEnvironment env, ILogger<ModelHost> log)
    : IHostedService, IDisposable
{
    readonly InferenceOptions _options = options.Value;
    volatile OnnxClassifier? _classifier;

    /// <summary>The classifier now serving; for metadata. A request that runs the model takes <see cref="Acquire"/>.</summary>
    public OnnxClassifier? Classifier => _classifier;
    /// <summary>Why there is no classifier, once the start has been tried.</summary>
    public string? Failure { get; private set; }
    /// <summary>Inference:ModelPath, resolved. The only file this service loads a model from.</summary>
    public string ModelPath { get; } = OptionsRegistration.Resolve(env, options.Value.ModelPath);

    /// <summary>The <see cref="ModelProfile"/> of a third-party model: Inference:ProfilePath when set, else
    /// <c>name.profile.json</c> beside <c>name.onnx</c> when there is one, else null (the file follows OnnxContract).
    /// Looked up at every load, so a reload picks up a profile put beside a new file.</summary>
    public string? ProfilePath => string.IsNullOrWhiteSpace(_options.ProfilePath)
        ? File.Exists(ModelProfile.SidecarPath(ModelPath)) ? ModelProfile.SidecarPath(ModelPath) : null
        : OptionsRegistration.Resolve(env, _options.ProfilePath);

    /// <summary>The classifier, or a 503 problem naming the reason.</summary>
    public OnnxClassifier Require() => _classifier ?? throw NotLoaded();

    /// <summary>The classifier now serving, kept alive until the lease is disposed. Throws a 503 problem when none.</summary>
    public ModelLease Acquire()
    {
        while (true)
        {
            var classifier = _classifier ?? throw NotLoaded();
            if (classifier.TryAddRef()) return new ModelLease(classifier);
            // Swapped out and released between the read and the reference: read the new one.
        }
    }

    ProblemException NotLoaded() => ProblemException.Overloaded(
        $"The model is not loaded: {Failure ?? "the service is starting"}. Check /health/ready.", _options.RetryAfterSeconds);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var p in new[] { "CPU", "CUDA" }) ApiMetrics.Provider.WithLabels(p).Set(0);
        ApiMetrics.Ready.Set(0);
        try
        {
            _classifier = OnnxClassifier.Load(ModelPath, _options, log, ProfilePath);
        }
        catch (CudaUnavailableException e)
        {
            Failure = e.Message;
            log.LogCritical("{Failure} The service is not ready.", e.Message);
            return Task.CompletedTask;
        }
        Announce(_classifier);
        return Task.CompletedTask;
    }

    /// <summary>Loads Inference:ModelPath again, checked like at start, without serving it. Throws like
    /// <see cref="OnnxClassifier.Load"/>.</summary>
    public OnnxClassifier LoadCandidate(string? profilePath) => OnnxClassifier.Load(ModelPath, _options, log, profilePath);

    /// <summary>Serves <paramref name="next"/> from now on; the previous classifier is disposed when its last lease ends.</summary>
    public void Swap(OnnxClassifier next)
    {
        var previous = Interlocked.Exchange(ref _classifier, next);
        if (previous is not null) ApiMetrics.Provider.WithLabels(previous.Provider).Set(0);
        Announce(next);
        previous?.Dispose();
    }

    void Announce(OnnxClassifier classifier)
    {
        var m = classifier.Model;
        ApiMetrics.Provider.WithLabels(classifier.Provider).Set(1);
        log.LogInformation("Model {Path} ({Fingerprint}, preset {Preset}, {Classes} classes, input {Input}x{Input} from {Resize}, " +
            "{FeatureDim}-d features) runs on {Provider}.", m.Path, m.Fingerprint, m.Preset ?? "?", m.Classes, m.InputSize,
            m.InputSize, m.ResizeSize, m.FeatureDim, classifier.Provider);
        if (m.Profile is { } p)
            log.LogInformation("Third-party model, served through its profile {Profile}: input '{Input}' {Order} scaled to {Range} " +
                "minus [{Mean}] over [{Std}], {Resize}; scores '{Scores}' ({Kind}); features {Features}.", ProfilePath, p.Input,
                p.ChannelOrder, p.PixelRange, string.Join(", ", p.Mean), string.Join(", ", p.Std), p.Resize, p.Scores, p.ScoresAre,
                p.Features is null ? "none (no gallery)" : $"'{p.Features}'");
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _classifier?.Dispose();
}

/// <summary>One request's hold on a classifier (see <see cref="ModelHost.Acquire"/>).</summary>
public sealed class ModelLease(OnnxClassifier classifier) : IDisposable
{
    int _released;

    public OnnxClassifier Classifier { get; } = classifier;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) Classifier.Release();
    }
}
