using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Endpoints;

/// <summary>POST /api/classify and POST /api/features.</summary>
public static class ClassifyEndpoints
{
    public static RouteGroupBuilder MapClassifyEndpoints(this RouteGroupBuilder api)
    {
        var inference = api.MapGroup("").WithTags("Inference");
        inference.MapPost("/classify", ClassifyAsync).WithName("Classify")
            .WithSummary("Top-k classes of one or more images")
            .WithDescription("Send a multipart form with one or more file fields named `image`, or the raw bytes of one image " +
                "with Content-Type image/jpeg, image/png, image/gif or image/webp. JPEG, PNG, GIF (first frame) and WebP are " +
                "decoded; the shorter side is scaled to the model's resize_size and the central crop classified. `tenCrop=true` " +
                "averages the softmax over the paper's 10 crops (corners, centre and their mirrors). The X-Cache header says " +
                "hit when every image was answered from the cache.")
            .AcceptsImages(many: true)
            .WithExample(StatusCodes.Status200OK, Examples.Classify);
        inference.MapPost("/features", FeaturesAsync).WithName("Features")
            .WithSummary("FC7 feature vector of one or more images")
            .WithDescription("The post-ReLU FC7 activations (the paper's 4096-d feature for the paper preset) of the central crop, " +
                "or their mean over the 10 crops with `tenCrop=true`. Same uploads as /api/classify.")
            .AcceptsImages(many: true)
            .WithExample(StatusCodes.Status200OK, Examples.Features);
        return api;
    }

    /// <param name="k">How many classes to return (1 to Uploads:MaxK; more than the model has gives them all).</param>
    /// <param name="tenCrop">Average over the paper's 10 crops instead of the central one.</param>
    public static async Task<Results<Ok<ClassifyResponse>, ProblemHttpResult>> ClassifyAsync(HttpRequest request,
        InferencePipeline pipeline, ModelHost host, AdmissionControl admission, IOptions<UploadOptions> options, CancellationToken ct,
        int k = 5, bool tenCrop = false)
    {
        try
        {
            using var slot = admission.Enter();   // 503 at capacity, before the body is read
            using var lease = host.Acquire();   // one model for the whole request, even across a reload
            var model = lease.Classifier.Model;
            CheckK(k, options.Value);
            var images = await Uploads.ReadAsync(request, options.Value, options.Value.MaxImagesPerRequest, ct);
            var answers = await pipeline.AnalyzeAsync(lease.Classifier, [.. images.Select(i => i.Bytes)], tenCrop, ct);
            SetCacheHeader(request.HttpContext, answers);
            return TypedResults.Ok(ClassifyResponse.From(model, answers, k, tenCrop));
        }
        catch (ProblemException p)
        {
            return p.ToResult(request.HttpContext);
        }
    }

    /// <param name="tenCrop">Average over the paper's 10 crops instead of the central one.</param>
    public static async Task<Results<Ok<FeaturesResponse>, ProblemHttpResult>> FeaturesAsync(HttpRequest request,
        InferencePipeline pipeline, ModelHost host, AdmissionControl admission, IOptions<UploadOptions> options, CancellationToken ct,
        bool tenCrop = false)
    {
        try
        {
            using var slot = admission.Enter();
            using var lease = host.Acquire();
            var model = lease.Classifier.Model;
            if (!model.HasFeatures) throw ProblemException.NoFeatures(model.FileName);
            var images = await Uploads.ReadAsync(request, options.Value, options.Value.MaxImagesPerRequest, ct);
            var answers = await pipeline.AnalyzeAsync(lease.Classifier, [.. images.Select(i => i.Bytes)], tenCrop, ct);
            SetCacheHeader(request.HttpContext, answers);
            return TypedResults.Ok(new FeaturesResponse(model.Fingerprint, tenCrop, model.FeatureDim,
                [.. answers.Select((a, i) => new ImageFeatures(i, a.Cached, a.Prediction.Features))]));
        }
        catch (ProblemException p)
        {
            return p.ToResult(request.HttpContext);
        }
    }

    internal static void CheckK(int k, UploadOptions options)
    {
        if (k < 1 || k > options.MaxK)
            throw ProblemException.BadRequest($"k is {k}; send a k from 1 to {options.MaxK}.");
    }

    internal static void SetCacheHeader(HttpContext http, IEnumerable<Analysis> answers) =>
        http.Response.Headers["X-Cache"] = answers.All(a => a.Cached) ? "hit" : "miss";
}
