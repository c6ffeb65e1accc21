using AlexNet.Api.Samples;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AlexNet.Api.Endpoints;

/// <summary>A sample, as the list gives it: its name, class and where its PNG is.</summary>
public sealed record SampleItem(string Name, string Label, string Url);

/// <summary>GET /api/samples and /api/samples/{name}: the images the model knows (<see cref="SampleLibrary"/>).</summary>
public static class SampleEndpoints
{
    public static RouteGroupBuilder MapSampleEndpoints(this RouteGroupBuilder api)
    {
        var samples = api.MapGroup("/samples").WithTags("Samples");
        samples.MapGet("", List).WithName("ListSamples")
            .WithSummary("Sample images of what the model knows (for the demo model: Fashion-MNIST test images)")
            .WithDescription("From the server's Samples:Path folder (samples.json). Empty when the deployment has none.");
        samples.MapGet("/{name}", Get).WithName("GetSample").WithSummary("One sample image (PNG), by the name the list gives")
            .Produces(StatusCodes.Status200OK, contentType: "image/png").ProducesProblem(StatusCodes.Status404NotFound);
        return api;
    }

    public static Ok<SampleItem[]> List(SampleLibrary library) =>
        TypedResults.Ok(library.All.Select(s => new SampleItem(s.Name, s.Label, $"/api/samples/{s.Name}")).ToArray());

    /// <summary>The name is looked up in the list read at start; it is never part of a path.</summary>
    public static Results<PhysicalFileHttpResult, ProblemHttpResult> Get(string name, SampleLibrary library) =>
        library.Find(name) is { } s
            ? TypedResults.PhysicalFile(s.Path, "image/png")
            : throw RefusedException.NotFound($"There is no sample named '{Truncate(name)}'; GET /api/samples lists them.");

    static string Truncate(string s) => s.Length <= 64 ? s : s[..64] + "...";
}
