using System.Diagnostics;
using AlexNet.Api.Gallery;
using AlexNet.Api.Inference;
using Microsoft.Extensions.Options;
using Prometheus;

namespace AlexNet.Api.Serving;

/// <summary>What a reload did.</summary>
public sealed record ReloadOutcome(bool Changed, string? PreviousFingerprint, Generation Current, int GalleryImages, TimeSpan Took);

/// <summary>
/// Builds generations and puts them in service, the same way at start and on POST /api/model/reload: load and check
/// the file, warm it up, re-embed the gallery for it and publish model and index in one step
/// (<see cref="GalleryService.SwitchModel"/>).
/// <para>At start the file is loaded before Kestrel listens (a missing or malformed file stops the start with the path
/// in the message; Inference:Provider=Cuda without a working CUDA does not: the service runs, says why in
/// /health/ready and answers inference with 503, rather than quietly running on the CPU). Warm-up and the gallery
/// (which may re-embed many images) follow in the background while the port is open and readiness says what is
/// under way, so liveness probes see a live process during a long re-embed.</para>
/// <para>A reload reads Inference:ModelPath again (the server's setting; a request never names a file). Requests in
/// flight finish on the generation they started with; nothing fails. A file that does not load (422) or breaks the
/// contract (409) leaves the old model serving. One reload at a time (409 while one runs). Deploy by writing the new
/// file beside the old one and renaming it over Inference:ModelPath (atomic on one file system), then POST. A
/// half-written file is refused, and the next POST after the copy completes succeeds.</para>
/// </summary>
public sealed class ModelLoader(ServingHost host, GalleryService gallery, IOptions<InferenceOptions> options, ILogger<ModelLoader> log)
    : IHostedService
{
    static readonly Counter Reloads = Metrics.CreateCounter("alexnet_model_reloads_total",
        "POST /api/model/reload by result (swapped, unchanged, refused).", "result");

    readonly SemaphoreSlim _one = new(1, 1);   // the start's background part, then one reload at a time
    Task _started = Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (var p in new[] { ExecutionProvider.Cpu, ExecutionProvider.Cuda }) ApiMetrics.Provider.WithLabels(p.Label()).Set(0);
        ApiMetrics.Ready.Set(0);
        OnnxClassifier first;
        try
        {
            first = host.LoadClassifier(host.ProfilePath);
        }
        catch (CudaUnavailableException e)
        {
            host.Fail(e.Message);
            log.LogCritical("{Failure} The service is not ready.", e.Message);
            return Task.CompletedTask;
        }
        gallery.Open();   // a database that does not open stops the start, like a bad model file
        _one.Wait(cancellationToken);
        _started = Task.Run(() =>
        {
            try
            {
                Serve(first);
            }
            catch (Exception e)
            {
                first.Dispose();
                host.Fail($"the start failed: {e.Message}");
                log.LogCritical(e, "The model could not be put in service; the service is not ready.");
            }
            finally
            {
                _one.Release();
            }
        }, CancellationToken.None);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => _started.WaitAsync(cancellationToken);

    /// <summary>Warms <paramref name="next"/> up, re-embeds the gallery for it and publishes both as one generation.</summary>
    void Serve(OnnxClassifier next)
    {
        var watch = Stopwatch.StartNew();
        if (host.Current is null) host.Report("the model is warming up");
        next.WarmUp(options.Value.MaxBatchSize);
        log.LogInformation("Model warmed up on {Provider} in {Ms} ms (batches of 1 and {Max}).", next.Provider.Label(),
            watch.ElapsedMilliseconds, options.Value.MaxBatchSize);
        if (host.Current is null) host.Report("the gallery is loading");
        gallery.SwitchModel(next, index => host.Publish(new Generation(next, index)), waitForStore: host.Current is null);
        Announce(next);
    }

    /// <summary>Throws <see cref="RefusedException"/> (409, 422) with the reason; the old model keeps serving.</summary>
    public async Task<ReloadOutcome> ReloadAsync(CancellationToken ct)
    {
        if (host.Current is null && !_started.IsCompleted)
            throw Refused(Refusal.Conflict, "Still starting", "The service is still starting. Send this again when /health/ready says ready.");
        await _started;   // published moments before it ends
        if (!await _one.WaitAsync(0, ct))
            throw Refused(Refusal.Conflict, "Reload already running", "Another reload is running. Send this one again when it has answered.");
        try
        {
            var watch = Stopwatch.StartNew();
            var current = host.Current ?? throw Refused(Refusal.Conflict, "No model serving",
                $"The service has no model to replace ({host.NotReadyReason}); fix that and restart it.");
            var next = Load();
            if (next.Model.Fingerprint == current.Fingerprint)
            {
                next.Dispose();
                Reloads.WithLabels("unchanged").Inc();
                return new ReloadOutcome(false, current.Fingerprint, current, gallery.Count, watch.Elapsed);
            }
            try
            {
                // Off the request thread: warm-up and re-embedding are CPU work. Not cancellable once started: a
                // half-done switch is worse than a late answer.
                await Task.Run(() => Serve(next), CancellationToken.None);
            }
            catch
            {
                if (host.Current?.Classifier != next) next.Dispose();
                throw;
            }
            Reloads.WithLabels("swapped").Inc();
            log.LogInformation("Model reloaded: {Previous} -> {Fingerprint} in {Ms} ms.", current.Fingerprint, next.Model.Fingerprint,
                watch.ElapsedMilliseconds);
            return new ReloadOutcome(true, current.Fingerprint, host.Current!, gallery.Count, watch.Elapsed);
        }
        finally
        {
            _one.Release();
        }
    }

    OnnxClassifier Load()
    {
        // Messages name the server's path; the answer names the file only.
        var profile = host.ProfilePath;
        string Say(Exception e)
        {
            var message = e.Message.Replace(host.ModelPath, Path.GetFileName(host.ModelPath), StringComparison.Ordinal);
            return profile is null ? message : message.Replace(profile, Path.GetFileName(profile), StringComparison.Ordinal);
        }
        try
        {
            return host.LoadClassifier(profile);
        }
        catch (FileNotFoundException)
        {
            throw Refused(Refusal.Unprocessable, "Model file missing",
                $"There is no file at Inference:ModelPath ({Path.GetFileName(host.ModelPath)}); the current model keeps serving. " +
                "Put the new model there, then send this again.");
        }
        catch (ModelContractException e)
        {
            throw Refused(Refusal.Conflict, "Model does not fit the service", $"{Say(e)} The current model keeps serving.");
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or CudaUnavailableException)
        {
            throw Refused(Refusal.Unprocessable, "Model file does not load",
                $"{Say(e)} The current model keeps serving. If the file is still being copied, send this again when it is complete.");
        }
    }

    void Announce(OnnxClassifier classifier)
    {
        var m = classifier.Model;
        log.LogInformation("Model {Path} ({Fingerprint}, preset {Preset}, {Classes} classes, input {Input}x{Input} from {Resize}, " +
            "{FeatureDim}-d features) runs on {Provider}.", m.Path, m.Fingerprint, m.Preset ?? "?", m.Classes, m.InputSize,
            m.InputSize, m.ResizeSize, m.FeatureDim, classifier.Provider.Label());
        if (m.Profile is { } p)
            log.LogInformation("Third-party model, served through its profile {Profile}: input '{Input}' {Order} scaled to {Range} " +
                "minus [{Mean}] over [{Std}], {Resize}; scores '{Scores}' ({Kind}); features {Features}.", host.ProfilePath, p.Input,
                p.ChannelOrder, p.PixelRange, string.Join(", ", p.Mean), string.Join(", ", p.Std), p.Resize, p.Scores, p.ScoresAre,
                p.Features is null ? "none (no gallery)" : $"'{p.Features}'");
    }

    static RefusedException Refused(Refusal kind, string title, string detail)
    {
        Reloads.WithLabels("refused").Inc();
        return new RefusedException(kind, title, detail);
    }
}
