using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using AlexNet.Api.Serving;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AlexNet.Api.Endpoints;

/// <summary>GET /api/model: what the loaded model says about itself; GET /api/model/conv1.png: its conv1 kernels;
/// POST /api/model/reload: the configured file again (<see cref="ModelLoader"/>).</summary>
public static class ModelEndpoints
{
    public static RouteGroupBuilder MapModelEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/model", Get).WithTags("Model").WithName("Model")
            .WithSummary("The loaded model: labels, WordNet ids, sizes, provenance, fingerprint, execution provider")
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithExample(StatusCodes.Status200OK, Examples.Model);
        api.MapGet("/model/conv1.png", Conv1).WithTags("Model").WithName("ModelConv1")
            .WithSummary("Picture of the model's conv1 kernels, drawn from its own weights")
            .WithDescription("The first layer's convolution kernels of the model in service (ours: tower a above tower b, as the " +
                "paper's Figure 3; torchvision's and third-party files alike), each tile scaled to 0..255 on its own. 404 when the " +
                "model's first layer is not a convolution with float weights in the file.")
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        api.MapPost("/model/reload", ReloadAsync).WithTags("Model").WithName("ReloadModel")
            .WithSummary("Load the configured model file again and put it in service (needs X-Api-Key)")
            .WithDescription("Reads the server's Inference:ModelPath (the request names no file and has no body), checks it like at " +
                "start, warms it up, re-embeds the gallery and swaps it in at once; requests in flight finish on the model they " +
                "started with. A file that does not load (422) or does not fit the service's contract (409) leaves the current " +
                "model serving. 409 also while another reload runs.")
            .RequireApiKey()
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status422UnprocessableEntity);
        return api;
    }

    public static async Task<Results<Ok<ReloadResponse>, ProblemHttpResult>> ReloadAsync(ModelLoader loader, HttpContext http)
    {
        var r = await loader.ReloadAsync(http.RequestAborted);
        var m = r.Current.Model;
        return TypedResults.Ok(new ReloadResponse(r.Changed, r.PreviousFingerprint, m.Fingerprint, m.FileName, r.Current.Classifier.Provider.Label(),
            r.GalleryImages, Math.Round(r.Took.TotalSeconds, 3)));
    }

    /// <summary>Drawn from the weights of the file in service (read from its own path, never a client's).</summary>
    public static Results<FileContentHttpResult, ProblemHttpResult> Conv1(ServingHost host, Conv1Picture pictures, HttpContext http)
    {
        var model = host.Require().Model;
        var png = pictures.For(model)
            ?? throw RefusedException.NotFound($"The model {model.FileName} does not start with a convolution whose float weights are in the file, so there are no conv1 kernels to draw.");
        http.Response.Headers.CacheControl = "no-cache";   // a reload may serve another model at the same URL; revalidate
        return TypedResults.File(png, "image/png", entityTag: new Microsoft.Net.Http.Headers.EntityTagHeaderValue($"\"{model.Fingerprint[7..23]}\""));
    }

    public static Results<Ok<ModelResponse>, ProblemHttpResult> Get(ServingHost host)
    {
        var generation = host.Require();
        var m = generation.Model;
        return TypedResults.Ok(new ModelResponse(m.FileName, m.Fingerprint, m.Preset, generation.Classifier.Provider.Label(), m.InputSize,
            m.ResizeSize, m.Classes, m.FeatureDim, [.. m.Labels.Select((l, i) => new ClassInfo(i, l, m.Synsets[i]))], m.Provenance,
            m.Metadata, m.Profile, m.Domain, OutOfDomainInfo.From(m.DomainStats), m.Precision, m.Quantization));
    }
}
