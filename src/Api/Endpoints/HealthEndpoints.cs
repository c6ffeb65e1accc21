using AlexNet.Api.Gallery;
using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using AlexNet.Api.Serving;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Endpoints;

/// <summary>
/// /health/live: the process answers. /health/ready: a generation serves (the model is loaded and warmed up, the
/// gallery indexed for it); the answer names the execution provider, and until then the reason says what is under way. Both are mapped in every environment and are not rate limited.
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

    public static Results<Ok<ReadinessResponse>, ProblemHttpResult> Ready(ServingHost host, InferenceBatcher batcher, GalleryService gallery,
        IOptions<InferenceOptions> options, HttpContext http)
    {
        // A full gallery disk degrades writes only: still 200, so a load balancer keeps sending classify and search here.
        if (host.Current is { } current)
            return TypedResults.Ok(new ReadinessResponse(gallery.StoreFault is null ? "ready" : "degraded", current.Classifier.Provider.Label(),
                current.Model.FileName, current.Fingerprint, gallery.Count, batcher.QueueLength, gallery.StoreFault));
        var reason = host.NotReadyReason ?? "the model is loading";
        http.Response.Headers.RetryAfter = options.Value.RetryAfterSeconds.ToString();
        return TypedResults.Problem($"Not ready: {reason}.", statusCode: StatusCodes.Status503ServiceUnavailable, title: "Not ready",
            extensions: new Dictionary<string, object?>
            {
                ["provider"] = "none",
                ["requestedProvider"] = options.Value.Provider.ToString(),
                ["reason"] = reason,
            });
    }
}
