using AlexNet.Api.Http;
using Microsoft.AspNetCore.Http.HttpResults;

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
    /// <param name="model">Which served model answers (GET /api/models); the default one when not given.</param>
    public static async Task<Results<Ok<ClassifyResponse>, ProblemHttpResult>> ClassifyAsync([AsParameters] UploadServices s,
        int k = 5, bool tenCrop = false, string? model = null)
    {
        s.CheckK(k);
        using var call = await s.BeginAsync(tenCrop, model: model);
        var answers = await s.AnalyzeAsync(call, tenCrop);
        return TypedResults.Ok(ClassifyResponse.From(call.Model, answers, k, tenCrop));
    }

    /// <param name="tenCrop">Average over the paper's 10 crops instead of the central one.</param>
    /// <param name="model">Which served model answers (GET /api/models); the default one when not given.</param>
    public static async Task<Results<Ok<FeaturesResponse>, ProblemHttpResult>> FeaturesAsync([AsParameters] UploadServices s,
        bool tenCrop = false, string? model = null)
    {
        using var call = await s.BeginAsync(tenCrop, needsFeatures: true, model: model);
        var answers = await s.AnalyzeAsync(call, tenCrop);
        return TypedResults.Ok(new FeaturesResponse(call.Model.Fingerprint, tenCrop, call.Model.FeatureDim,
            [.. answers.Select((a, i) => new ImageFeatures(i, a.Cached, a.Prediction.Features))]));
    }
}
