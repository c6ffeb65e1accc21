using System.Text.Json;
using System.Text.Json.Serialization;
using AlexNet.Api.Http;
using AlexNet.Api.Oip;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Endpoints;

/// <summary>
/// The Open Inference Protocol (KServe v2) over REST (kserve/open-inference-protocol inference_rest.md): server and
/// model metadata, health, and inference with Triton's binary tensor data and classification extensions. Errors
/// are the protocol's <c>{"error": "..."}</c> with Triton's statuses (<see cref="OipErrors"/>), not problem+json.
/// The gRPC form of the same protocol is <see cref="OipGrpcService"/>.
/// </summary>
public static class OipEndpoints
{
    const string Tag = "Open Inference Protocol (v2)";

    public static WebApplication MapOipEndpoints(this WebApplication app)
    {
        var v2 = app.MapGroup("/v2").WithTags(Tag).AnswerOipErrors().DisableAntiforgery();
        v2.MapGet("", (Func<OipServerMetadata>)OipModels.Server).WithName("OipServerMetadata")
            .WithSummary("Server metadata: name, version and the protocol extensions supported");
        v2.MapGet("/health/live", () => TypedResults.Ok(new OipLive(true))).WithName("OipServerLive").WithSummary("200 while the process runs");
        v2.MapGet("/health/ready", ServerReady).WithName("OipServerReady")
            .WithSummary("200 when the model is loaded and warmed up; 400 (the protocol's 'false') until then");
        var limited = v2.MapGroup("/models/{name}").RequireRateLimiting(RateLimiting.PerClient);
        foreach (var (prefix, suffix) in new[] { ("", ""), ("/versions/{version}", "Version") })
        {
            limited.MapGet(prefix, Metadata).WithName("OipModelMetadata" + suffix)
                .WithSummary("Model metadata: versions, platform, inputs and outputs with their datatypes and shapes")
                .Produces<OipError>(StatusCodes.Status404NotFound).Produces<OipError>(StatusCodes.Status503ServiceUnavailable);
            limited.MapGet(prefix + "/ready", ModelReady).WithName("OipModelReady" + suffix)
                .WithSummary("200 when the model is ready, 400 when it is not yet").Produces<OipError>(StatusCodes.Status404NotFound);
            limited.MapPost(prefix + "/infer", InferAsync).WithName("OipInfer" + suffix)
                .WithSummary("Inference on FP32 pixels or encoded images, in JSON or with binary tensor data")
                .WithDescription($"One input: `image` FP32 [N, 3, S, S] (RGB 0..255, the service's preprocessing already applied) or " +
                    $"`{OipModels.EncodedInput}` BYTES [N] (JPEG, PNG, GIF or WebP images, base64 strings in JSON or binary data; decoded " +
                    "and preprocessed as /api/classify does, with the same upload limits). Outputs `probabilities` and `features` FP32; " +
                    "`\"parameters\": {\"classification\": k}` on `probabilities` gives [N, k] BYTES \"score:index:label\" strings. Binary " +
                    $"tensor data: send the JSON header's length in {OipJson.HeaderLength} and the tensors after it (binary_data_size per " +
                    "input); ask for binary outputs with `\"binary_data\": true` per output or `\"binary_data_output\": true` in the " +
                    "request's parameters. Errors: 404 unknown model or version, 503 not ready or queue full (Retry-After), 429 this " +
                    "client's limits, else 400.")
                .Accepts<OipInferRequestBody>("application/json", "application/octet-stream")
                .Produces<OipInferResponseBody>(StatusCodes.Status200OK, "application/json", "application/octet-stream")
                .Produces<OipError>(StatusCodes.Status400BadRequest).Produces<OipError>(StatusCodes.Status404NotFound)
                .Produces<OipError>(StatusCodes.Status503ServiceUnavailable);
        }
        return app;
    }

    public static Results<Ok<OipReady>, JsonHttpResult<OipReady>> ServerReady(OipModels models) =>
        models.Ready ? TypedResults.Ok(new OipReady(true)) : TypedResults.Json(new OipReady(false), statusCode: StatusCodes.Status400BadRequest);

    public static Ok<OipModelMetadata> Metadata(OipModels models, string name, string? version = null) =>
        TypedResults.Ok(models.Metadata(name, version));

    public static Results<Ok<OipModelReady>, JsonHttpResult<OipModelReady>> ModelReady(OipModels models, string name, string? version = null)
    {
        return models.Check(name, version).Ready ? TypedResults.Ok(new OipModelReady(name, true))
            : TypedResults.Json(new OipModelReady(name, false), statusCode: StatusCodes.Status400BadRequest);
    }

    /// <summary>Reads the whole body under the upload gate and limits, answers in JSON or with binary outputs.</summary>
    public static async Task<FileContentHttpResult> InferAsync(HttpContext http, OipInference inference, UploadGate gate,
        IOptions<UploadOptions> uploads, string name, string? version = null)
    {
        using var permit = gate.Enter(http.Request);   // 429 / 503 before the body is read
        int? headerLength = null;
        if (http.Request.Headers[OipJson.HeaderLength] is { Count: > 0 } h)
            headerLength = int.TryParse(h.ToString(), out var n) ? n
                : throw RefusedException.BadInput($"{OipJson.HeaderLength} is '{h}'; send the JSON header's length in bytes.");
        var body = await Uploads.ReadWholeBodyAsync(http.Request, uploads.Value, http.RequestAborted);
        var request = OipJson.ParseRequest(body, headerLength, name, version, inference.MaxElements);
        var result = await inference.InferAsync(request, http, http.RequestAborted);
        var bytes = OipJson.WriteResponse(result, out var jsonLength);
        if (jsonLength is { } j) http.Response.Headers[OipJson.HeaderLength] = j.ToString();
        return TypedResults.File(bytes, jsonLength is null ? "application/json" : "application/octet-stream");
    }
}

/// <summary>The protocol's error statuses (Triton's mapping): 404 not found, 503 unavailable (with Retry-After), 429 for
/// this service's per-client limits, 400 for everything else a client sent (sizes and formats included), as
/// <c>{"error": "..."}</c>. Unexpected faults stay 500 problems.</summary>
public static class OipErrors
{
    public static int Status(Refusal kind) => kind switch
    {
        Refusal.NotFound => StatusCodes.Status404NotFound,
        Refusal.Unavailable => StatusCodes.Status503ServiceUnavailable,
        Refusal.TooManyRequests => StatusCodes.Status429TooManyRequests,
        _ => StatusCodes.Status400BadRequest,
    };

    public static TBuilder AnswerOipErrors<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            try
            {
                return await next(context);
            }
            catch (RefusedException e)
            {
                if (e.RetryAfterSeconds is { } s) context.HttpContext.Response.Headers.RetryAfter = s.ToString();
                if (e.Kind is Refusal.TooLarge or Refusal.Timeout) context.HttpContext.Response.Headers.Connection = "close";
                return TypedResults.Json(new OipError(e.Message), statusCode: Status(e.Kind));
            }
        });
}

/// <summary>The JSON body of an inference request (for OpenAPI; the handler reads the body itself).</summary>
public sealed record OipInferRequestBody(string? Id, JsonElement? Parameters, OipInputBody[] Inputs, OipOutputRequestBody[]? Outputs);

/// <param name="Data">Flat or nested, row-major; FP32 numbers or BYTES base64 strings. Absent when parameters give binary_data_size.</param>
public sealed record OipInputBody(string Name, long[] Shape, string Datatype, JsonElement? Parameters, JsonElement? Data);

/// <param name="Parameters">"binary_data": true, "classification": k.</param>
public sealed record OipOutputRequestBody(string Name, JsonElement? Parameters);

public sealed record OipInferResponseBody(
    [property: JsonPropertyName("model_name")] string ModelName,
    [property: JsonPropertyName("model_version")] string ModelVersion,
    string? Id, OipOutputBody[] Outputs);

public sealed record OipOutputBody(string Name, long[] Shape, string Datatype, JsonElement? Parameters, JsonElement? Data);
