using AlexNet.Api.Gallery;
using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Endpoints;

/// <summary>
/// /health/live: the process answers. /health/ready: the model is loaded, warmed up and the gallery loaded; the
/// answer names the execution provider. Both are mapped in every environment and are not rate limited.
/// </summary>
public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        var health = app.MapGroup("/health").WithTags("Health");
        health.MapGet("/live", Live).WithName("Live").WithSummary("200 while the process runs");
        health.MapGet("/ready", Ready).WithName("Ready")
            .WithSummary("200 when the model is loaded and warmed up; otherwise 503 with the reason")
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithExample(StatusCodes.Status200OK, Examples.Ready);
        return app;
    }

    public static Ok<LivenessResponse> Live() => TypedResults.Ok(new LivenessResponse("alive"));

    public static Results<Ok<ReadinessResponse>, ProblemHttpResult> Ready(ModelHost host, InferenceBatcher batcher, GalleryService gallery,
        IOptions<InferenceOptions> options, HttpContext http)
    {
        var classifier = host.Classifier;
        var reason = classifier is null ? host.Failure ?? "the model is loading"
            : !batcher.WarmedUp ? "the model is warming up"
            : !gallery.Loaded ? "the gallery is loading"
            : null;
        if (reason is null)
            return TypedResults.Ok(new ReadinessResponse("ready", classifier!.Provider, classifier.Model.FileName, classifier.Model.Fingerprint,
                gallery.Count, batcher.QueueLength));
        http.Response.Headers.RetryAfter = options.Value.RetryAfterSeconds.ToString();
        return TypedResults.Problem($"Not ready: {reason}.", statusCode: StatusCodes.Status503ServiceUnavailable, title: "Not ready",
            extensions: new Dictionary<string, object?>
            {
                ["provider"] = classifier?.Provider ?? "none",
                ["requestedProvider"] = options.Value.Provider.ToString(),
                ["reason"] = reason,
            });
    }
}
