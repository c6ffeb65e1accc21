using System.Diagnostics;
using AlexNet.Api.Gallery;
using AlexNet.Api.Http;
using Microsoft.Extensions.Options;
using Prometheus;

namespace AlexNet.Api.Inference;

/// <summary>What a reload did.</summary>
public sealed record ReloadOutcome(bool Changed, string? PreviousFingerprint, OnnxClassifier Current, int GalleryImages, TimeSpan Took);

/// <summary>
/// POST /api/model/reload: reads Inference:ModelPath again (the server's setting; a request never names a file),
/// checks it like at start, warms it up, re-embeds the gallery for it and puts it in service in one step
/// (<see cref="GalleryService.SwitchModel"/>). Requests in flight finish on the model they started with; nothing
/// fails. A file that does not load (422) or breaks the contract (409) leaves the old model serving. One reload at
/// a time (409 while one runs).
/// <para>Deploy by writing the new file beside the old one and renaming it over Inference:ModelPath (atomic on one
/// file system), then POST. A half-written file is refused, and the next POST after the copy completes succeeds.</para>
/// </summary>
public sealed class ModelReloader(ModelHost host, GalleryService gallery, IOptions<InferenceOptions> options, ILogger<ModelReloader> log)
{
    static readonly Counter Reloads = Metrics.CreateCounter("alexnet_model_reloads_total",
        "POST /api/model/reload by result (swapped, unchanged, refused).", "result");

    readonly SemaphoreSlim _one = new(1, 1);

    /// <summary>Throws <see cref="ProblemException"/> (409, 422) with the reason; the old model keeps serving.</summary>
    public async Task<ReloadOutcome> ReloadAsync(CancellationToken ct)
    {
        if (!await _one.WaitAsync(0, ct))
            throw Refused(StatusCodes.Status409Conflict, "Reload already running", "Another reload is running. Send this one again when it has answered.");
        try
        {
            var watch = Stopwatch.StartNew();
            var current = host.Classifier ?? throw Refused(StatusCodes.Status409Conflict, "No model serving",
                $"The service has no model to replace ({host.Failure ?? "it is starting"}); fix that and restart it.");
            var next = Load();
            if (next.Model.Fingerprint == current.Model.Fingerprint)
            {
                next.Dispose();
                Reloads.WithLabels("unchanged").Inc();
                return new ReloadOutcome(false, current.Model.Fingerprint, current, gallery.Count, watch.Elapsed);
            }
            try
            {
                // Off the request thread: warm-up and re-embedding are CPU work. Not cancellable once started: a
                // half-done switch is worse than a late answer.
                await Task.Run(() =>
                {
                    InferenceBatcher.WarmUp(next, options.Value.MaxBatchSize);
                    gallery.SwitchModel(next, () => host.Swap(next));
                }, CancellationToken.None);
            }
            catch
            {
                if (host.Classifier != next) next.Dispose();
                throw;
            }
            Reloads.WithLabels("swapped").Inc();
            log.LogInformation("Model reloaded: {Previous} -> {Fingerprint} in {Ms} ms.", current.Model.Fingerprint, next.Model.Fingerprint,
                watch.ElapsedMilliseconds);
            return new ReloadOutcome(true, current.Model.Fingerprint, next, gallery.Count, watch.Elapsed);
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
            return host.LoadCandidate(profile);
        }
        catch (FileNotFoundException)
        {
            throw Refused(StatusCodes.Status422UnprocessableEntity, "Model file missing",
                $"There is no file at Inference:ModelPath ({Path.GetFileName(host.ModelPath)}); the current model keeps serving. " +
                "Put the new model there, then send this again.");
        }
        catch (ModelContractException e)
        {
            throw Refused(StatusCodes.Status409Conflict, "Model does not fit the service",
                $"{Say(e)} The current model keeps serving.");
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or CudaUnavailableException)
        {
            throw Refused(StatusCodes.Status422UnprocessableEntity, "Model file does not load",
                $"{Say(e)} The current model keeps serving. If the file is still being copied, send this again when it is complete.");
        }
    }

    static ProblemException Refused(int status, string title, string detail)
    {
        Reloads.WithLabels("refused").Inc();
        return new ProblemException(status, title, detail);
    }
}
