using AlexNet.Api.Http;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Inference;

/// <summary>
/// Loads the model when the host starts, before Kestrel listens. A missing or malformed file stops the start with
/// the path in the message. Inference:Provider=Cuda without a working CUDA does not: the service runs, says why in
/// /health/ready and answers inference with 503, rather than quietly running on the CPU.
/// </summary>
public sealed class ModelHost(IOptions<InferenceOptions> options, IHostEnvironment env, ILogger<ModelHost> log)
    : IHostedService, IDisposable
{
    readonly InferenceOptions _options = options.Value;

    public OnnxClassifier? Classifier { get; private set; }
    /// <summary>Why there is no classifier, once the start has been tried.</summary>
    public string? Failure { get; private set; }
    public string ModelPath { get; } = OptionsRegistration.Resolve(env, options.Value.ModelPath);

    /// <summary>The classifier, or a 503 problem naming the reason.</summary>
    public OnnxClassifier Require() => Classifier ?? throw ProblemException.Overloaded(
        $"The model is not loaded: {Failure ?? "the service is starting"}. Check /health/ready.", _options.RetryAfterSeconds);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var p in new[] { "CPU", "CUDA" }) ApiMetrics.Provider.WithLabels(p).Set(0);
        ApiMetrics.Ready.Set(0);
        try
        {
            Classifier = OnnxClassifier.Load(ModelPath, _options, log);
        }
        catch (CudaUnavailableException e)
        {
            Failure = e.Message;
            log.LogCritical("{Failure} The service is not ready.", e.Message);
            return Task.CompletedTask;
        }
        var m = Classifier.Model;
        ApiMetrics.Provider.WithLabels(Classifier.Provider).Set(1);
        log.LogInformation("Model {Path} ({Fingerprint}, preset {Preset}, {Classes} classes, input {Input}x{Input} from {Resize}, " +
            "{FeatureDim}-d features) runs on {Provider}.", m.Path, m.Fingerprint, m.Preset ?? "?", m.Classes, m.InputSize,
            m.InputSize, m.ResizeSize, m.FeatureDim, Classifier.Provider);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => Classifier?.Dispose();
}
