using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using AlexNet.Api.Serving;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Endpoints;

/// <summary>What every upload endpoint takes (bound with [AsParameters], as eShop's CatalogServices): the request, the
/// admission bound, the generation in service, the analysis pipeline and the upload limits.</summary>
public sealed record UploadServices(HttpRequest Request, AdmissionControl Admission, ServingHost Host, InferencePipeline Pipeline,
    IOptions<UploadOptions> Options, CancellationToken Cancellation)
{
    public UploadOptions Limits => Options.Value;

    /// <summary>The images of the request, checked against the limits before anything is decoded.</summary>
    public Task<IReadOnlyList<Upload>> ReadAsync() => Uploads.ReadAsync(Request, Limits, Limits.MaxImagesPerRequest, Cancellation);

    /// <summary>Answers for <paramref name="uploads"/> from <paramref name="generation"/>'s model; sets X-Cache.</summary>
    public async Task<Analysis[]> AnalyzeAsync(Generation generation, IReadOnlyList<Upload> uploads, bool tenCrop, bool keepImage = false)
    {
        var answers = await Pipeline.AnalyzeAsync(generation, [.. uploads.Select(u => u.Bytes)], tenCrop, keepImage, Cancellation);
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
}
