using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using AlexNet.Api.Models;
using AlexNet.Api.Serving;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Endpoints;

/// <summary>What every upload endpoint takes (bound with [AsParameters], as eShop's CatalogServices): the request, the
/// upload gate and admission bound, the generation in service, the analysis pipeline and the upload limits.</summary>
public sealed record UploadServices(HttpRequest Request, UploadGate Gate, AdmissionControl Admission, ServingHost Host,
    InferencePipeline Pipeline, IOptions<UploadOptions> Options, ModelRegistry Models, CancellationToken Cancellation)
{
    public UploadOptions Limits => Options.Value;

    /// <summary>
    /// The steps before any image is decoded, in order: a place at the <see cref="UploadGate"/> (429 when this client
    /// has too many uploads in progress, 503 when too many bytes are held), the body read and checked against the
    /// limits, a slot of <see cref="AdmissionControl"/> (503 at capacity), a lease on the generation in service (503
    /// when none), and the work charged to the client (429 past RateLimit:CropLimit). Dispose the call when answered.
    /// </summary>
    /// <param name="needsFeatures">Refuse (409) when the model gives no features, before the body is read.</param>
    /// <param name="model">A served model's name (<see cref="ModelRegistry"/>; 404 when unknown); null: the default model.</param>
    public async Task<UploadCall> BeginAsync(bool tenCrop, bool needsFeatures = false, string? model = null)
    {
        var target = model is null ? null : Models.Resolve(model);
        var (host, pipeline) = target is null ? (Host, Pipeline) : (target.Host, target.Pipeline);
        if (needsFeatures) RequireFeatures(host.Require().Model);
        var permit = Gate.Enter(Request);
        AdmissionControl.Slot? slot = null;
        try
        {
            var uploads = await Uploads.ReadAsync(Request, Limits, Limits.MaxImagesPerRequest, Cancellation);
            slot = Admission.Enter();
            var lease = host.Acquire();   // one generation for the whole request, even across a reload
            try
            {
                if (needsFeatures) RequireFeatures(lease.Model);
                Gate.ChargeWork(Request.HttpContext, uploads.Count * (tenCrop ? 10 : 1));
                return new UploadCall(permit, slot, lease, uploads, pipeline);
            }
            catch
            {
                lease.Dispose();
                throw;
            }
        }
        catch
        {
            slot?.Dispose();
            permit.Dispose();
            throw;
        }
    }

    /// <summary>Answers for the call's images from its generation's model; sets X-Cache.</summary>
    public async Task<Analysis[]> AnalyzeAsync(UploadCall call, bool tenCrop, bool keepImage = false)
    {
        var answers = await call.Pipeline.AnalyzeAsync(call.Generation, [.. call.Uploads.Select(u => u.Bytes)], tenCrop, keepImage,
            UploadGate.Client(Request.HttpContext), Cancellation);
        Request.HttpContext.Response.Headers["X-Cache"] = answers.All(a => a.Cached) ? "hit" : "miss";
        return answers;
    }

    /// <summary>A bad k, refused.</summary>
    public void CheckK(int k) => CheckK(k, Limits);

    public static void CheckK(int k, UploadOptions limits)
    {
        if (k < 1 || k > limits.MaxK)
            throw RefusedException.BadInput($"k is {k}; send a k from 1 to {limits.MaxK}.");
    }

    static void RequireFeatures(ModelInfo model)
    {
        if (!model.HasFeatures) throw RefusedException.NoFeatures(model.FileName);
    }
}

/// <summary>One upload request past its checks: its images and the generation that answers it.</summary>
public sealed class UploadCall(UploadGate.Permit permit, AdmissionControl.Slot slot, GenerationLease lease, IReadOnlyList<Upload> uploads,
    InferencePipeline pipeline) : IDisposable
{
    /// <summary>The pipeline of the model the call is for (each served model has its own).</summary>
    public InferencePipeline Pipeline { get; } = pipeline;
    public IReadOnlyList<Upload> Uploads { get; } = uploads;
    public Generation Generation => lease.Generation;
    public ModelInfo Model => lease.Model;

    public void Dispose()
    {
        lease.Dispose();
        slot.Dispose();
        permit.Dispose();
    }
}
