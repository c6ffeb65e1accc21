using AlexNet.Api.Http;
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
            .WithSummary("Picture of the model's conv1 kernels, when one was saved beside the model file")
            .WithDescription("The PNG named like the model file with .conv1.png for .onnx (the training worker writes it), " +
                "from the model's folder. 404 when there is none.")
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

    /// <summary>The path is the loaded model's, never a client's: <c>models/x.onnx</c> gives <c>models/x.conv1.png</c>.</summary>
    public static Results<PhysicalFileHttpResult, ProblemHttpResult> Conv1(ServingHost host, HttpContext http)
    {
        var model = host.Require().Model;
        var path = Path.Combine(Path.GetDirectoryName(model.Path)!, Path.GetFileNameWithoutExtension(model.Path) + ".conv1.png");
        if (!File.Exists(path))
            throw RefusedException.NotFound($"The model {model.FileName} has no conv1 picture ({Path.GetFileName(path)} beside it).");
        http.Response.Headers.CacheControl = "no-cache";   // a new model file may come with a new picture; revalidate
        return TypedResults.PhysicalFile(path, "image/png", lastModified: File.GetLastWriteTimeUtc(path));
    }

    public static Results<Ok<ModelResponse>, ProblemHttpResult> Get(ServingHost host)
    {
        var generation = host.Require();
        var m = generation.Model;
        return TypedResults.Ok(new ModelResponse(m.FileName, m.Fingerprint, m.Preset, generation.Classifier.Provider.Label(), m.InputSize,
            m.ResizeSize, m.Classes, m.FeatureDim, [.. m.Labels.Select((l, i) => new ClassInfo(i, l, m.Synsets[i]))], m.Provenance,
            m.Metadata, m.Profile, OutOfDomainInfo.From(m.Domain)));
    }
}
