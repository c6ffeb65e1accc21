using AlexNet.Api.Http;
using AlexNet.Api.Models;
using AlexNet.Api.Serving;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AlexNet.Api.Endpoints;

/// <summary>One model in GET /api/models; the file's facts are null while it is not loaded.</summary>
/// <param name="Default">The model Inference:* configures: /api/classify without ?model=, and the gallery's.</param>
/// <param name="Precision">"fp32" or "int8" (a file written by alexnet-train quantize): the float model and its int8
/// twin can be served side by side under two names.</param>
public sealed record ModelSummary(string Name, string Version, bool Default, bool Ready, string? File, string? Fingerprint, string? Provider,
    int? Classes, int? FeatureDim, bool Gallery, string? Precision = null);

public sealed record ModelsResponse(string Default, ModelSummary[] Models);

/// <summary>GET /api/models: every model served by name (<see cref="ModelRegistry"/>); POST /api/models/{name}/reload:
/// that model's configured file again, the others untouched.</summary>
public static class ModelsEndpoints
{
    public static RouteGroupBuilder MapModelsEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/models", List).WithTags("Model").WithName("Models")
            .WithSummary("Every model served, by name: /api/classify?model=NAME, /v2/models/NAME");
        api.MapPost("/models/{name}/reload", ReloadAsync).WithTags("Model").WithName("ReloadNamedModel")
            .WithSummary("Load one model's configured file again and put it in service (needs X-Api-Key)")
            .WithDescription("As POST /api/model/reload, for the model of that name; the others keep serving untouched. The file is the " +
                "one configured for the name (Inference:ModelPath for the default model, Models:N:Path for the others), never one the " +
                "request names. 404 unknown name, 409 busy or not fitting, 422 missing or not loading.")
            .RequireApiKey()
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        return api;
    }

    public static Ok<ModelsResponse> List(ModelRegistry models) => TypedResults.Ok(new ModelsResponse(models.Default.Name,
        [.. models.All.Select(m => m.Host.Current is { } g
            ? new ModelSummary(m.Name, m.Version, m.IsDefault, true, g.Model.FileName, g.Fingerprint, g.Classifier.Provider.Label(), g.Model.Classes,
                g.Model.FeatureDim, m.IsDefault && g.Index is not null, g.Model.Precision)
            : new ModelSummary(m.Name, m.Version, m.IsDefault, false, null, null, null, null, null, false))]));

    public static async Task<Results<Ok<ReloadResponse>, ProblemHttpResult>> ReloadAsync(ModelRegistry models, ModelLoader loader, string name,
        HttpContext http)
    {
        var model = models.Resolve(name);
        var r = model.IsDefault ? await loader.ReloadAsync(http.RequestAborted) : await model.ReloadAsync(http.RequestAborted);
        var m = r.Current.Model;
        return TypedResults.Ok(new ReloadResponse(r.Changed, r.PreviousFingerprint, m.Fingerprint, m.FileName, r.Current.Classifier.Provider.Label(),
            r.GalleryImages, Math.Round(r.Took.TotalSeconds, 3)));
    }
}
