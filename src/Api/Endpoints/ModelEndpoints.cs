using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AlexNet.Api.Endpoints;

/// <summary>GET /api/model: what the loaded model says about itself.</summary>
public static class ModelEndpoints
{
    public static RouteGroupBuilder MapModelEndpoints(this RouteGroupBuilder api)
    {
        api.MapGet("/model", Get).WithTags("Model").WithName("Model")
            .WithSummary("The loaded model: labels, WordNet ids, sizes, provenance, fingerprint, execution provider")
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithExample(StatusCodes.Status200OK, Examples.Model);
        return api;
    }

    public static Results<Ok<ModelResponse>, ProblemHttpResult> Get(ModelHost host, HttpContext http)
    {
        try
        {
            var classifier = host.Require();
            var m = classifier.Model;
            return TypedResults.Ok(new ModelResponse(m.FileName, m.Fingerprint, m.Preset, classifier.Provider, m.InputSize, m.ResizeSize,
                m.Classes, m.FeatureDim, [.. m.Labels.Select((l, i) => new ClassInfo(i, l, m.Synsets[i]))], m.Provenance,
                m.Metadata));
        }
        catch (ProblemException p)
        {
            return p.ToResult(http);
        }
    }
}
