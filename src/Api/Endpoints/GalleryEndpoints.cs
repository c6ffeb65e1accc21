using AlexNet.Api.Gallery;
using AlexNet.Api.Http;
using AlexNet.Api.Serving;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Endpoints;

/// <summary>/api/gallery: images kept with their FC7 vectors, searched by Euclidean distance.</summary>
public static class GalleryEndpoints
{
    public static RouteGroupBuilder MapGalleryEndpoints(this RouteGroupBuilder api)
    {
        var gallery = api.MapGroup("/gallery").WithTags("Gallery");
        gallery.MapPost("", AddAsync).WithName("AddToGallery")
            .WithSummary("Add one or more images (needs X-Api-Key)")
            .WithDescription("Multipart form with one or more file fields named `image` and optional `label` and `note` fields, " +
                "matched to the images by position; or the raw bytes of one image with `label` and `note` in the query. " +
                "Stores a normalised copy (so a new model can re-embed it), a thumbnail and the FC7 vector. Durable when answered.")
            .AcceptsImages(many: true, labels: true)
            .RequireApiKey()
            .WithExample(StatusCodes.Status201Created, Examples.Added);
        gallery.MapGet("", List).WithName("ListGallery").WithSummary("List gallery images, oldest first")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithExample(StatusCodes.Status200OK, Examples.List);
        gallery.MapGet("/{id:long}", Get).WithName("GetGalleryImage").WithSummary("One gallery image")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithExample(StatusCodes.Status200OK, Examples.List.Items[0]);
        gallery.MapGet("/{id:long}/thumbnail", Thumbnail).WithName("GetGalleryThumbnail").WithSummary("PNG thumbnail of a gallery image")
            .Produces(StatusCodes.Status200OK, contentType: "image/png")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        gallery.MapDelete("/{id:long}", Delete).WithName("DeleteGalleryImage").WithSummary("Delete a gallery image (needs X-Api-Key)")
            .ProducesProblem(StatusCodes.Status404NotFound).ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .RequireApiKey();
        gallery.MapPost("/search", SearchAsync).WithName("SearchGallery")
            .WithSummary("Nearest gallery images to one or more uploaded images")
            .WithDescription("k nearest gallery images by Euclidean distance between FC7 vectors of central crops (exact search). " +
                "Same uploads as /api/classify.")
            .AcceptsImages(many: true)
            .WithExample(StatusCodes.Status200OK, Examples.Search);
        gallery.MapGet("/{id:long}/similar", Similar).WithName("SimilarInGallery")
            .WithSummary("Nearest gallery images to a gallery image (itself left out)")
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithExample(StatusCodes.Status200OK, Examples.Similar);
        return api;
    }

    public static async Task<Results<Created<GalleryAddResponse>, ProblemHttpResult>> AddAsync([AsParameters] UploadServices s,
        GalleryService gallery)
    {
        using var call = await s.BeginAsync(tenCrop: false, needsFeatures: true);
        var answers = await s.AnalyzeAsync(call, tenCrop: false, keepImage: true);   // the central crop, as search uses
        var rows = answers.Select((a, i) => gallery.Describe(a.Image!.Prepared, a.Image.Width, a.Image.Height, a.Sha256,
            call.Uploads[i].Label, call.Uploads[i].Note, call.Model.Fingerprint, a.Prediction.Features)).ToArray();
        var (fingerprint, created, sequence) = gallery.Add(rows);   // re-embedded there if the model was replaced meanwhile
        Sequence(s.Request.HttpContext, gallery, sequence);
        return TypedResults.Created($"/api/gallery/{created[0].Id}", new GalleryAddResponse(fingerprint, [.. created.Select(GalleryItem.From)]));
    }

    /// <param name="offset">Images to skip.</param>
    /// <param name="limit">Images to return, 1 to 1000.</param>
    public static Results<Ok<GalleryListResponse>, ProblemHttpResult> List(GalleryService gallery, int offset = 0, int limit = 50)
    {
        if (offset < 0 || limit < 1 || limit > 1000)
            throw RefusedException.BadInput($"offset is {offset} and limit {limit}; send offset >= 0 and limit from 1 to 1000.");
        var (total, page) = gallery.List(offset, limit);
        return TypedResults.Ok(new GalleryListResponse(total, offset, limit, [.. page.Select(GalleryItem.From)]));
    }

    public static Results<Ok<GalleryItem>, ProblemHttpResult> Get(long id, GalleryService gallery) =>
        gallery.Get(id) is { } e ? TypedResults.Ok(GalleryItem.From(e)) : throw Missing(id);

    public static Results<FileContentHttpResult, ProblemHttpResult> Thumbnail(long id, GalleryService gallery) =>
        gallery.Thumbnail(id) is { } png ? TypedResults.File(png, "image/png") : throw Missing(id);

    public static Results<NoContent, ProblemHttpResult> Delete(long id, GalleryService gallery, HttpContext http)
    {
        Sequence(http, gallery, gallery.Delete(id) ?? throw Missing(id));
        return TypedResults.NoContent();
    }

    /// <param name="k">How many neighbours, 1 to Uploads:MaxK.</param>
    /// <param name="minSequence">Shared gallery (PostgreSQL): search only once this replica reflects at least this change
    /// (the X-Gallery-Sequence of a write), waiting up to Gallery:MinSequenceWaitMs, else 503.</param>
    public static async Task<Results<Ok<SearchResponse>, ProblemHttpResult>> SearchAsync([AsParameters] UploadServices s,
        GalleryService gallery, [FromHeader(Name = MinSequenceHeader)] long? minSequence = null, int k = 5)
    {
        s.CheckK(k);
        if (minSequence is { } min) await gallery.WaitForSequenceAsync(min, s.Cancellation);
        using var call = await s.BeginAsync(tenCrop: false, needsFeatures: true);   // the query's model and the vectors: one generation
        var answers = await s.AnalyzeAsync(call, tenCrop: false);
        Sequence(s.Request.HttpContext, gallery, gallery.Sequence);   // read before the search: the index reflects at least this
        return TypedResults.Ok(new SearchResponse(call.Model.Fingerprint, k, [.. answers.Select((a, i) =>
            new ImageSearch(i, a.Cached, [.. gallery.Search(call.Generation, a.Prediction.Features, k).Select(SearchHit.From)]))]));
    }

    /// <param name="k">How many neighbours, 1 to Uploads:MaxK.</param>
    public static Results<Ok<SimilarResponse>, ProblemHttpResult> Similar(long id, GalleryService gallery, ServingHost host,
        IOptions<UploadOptions> options, int k = 5)
    {
        host.Require();
        UploadServices.CheckK(k, options.Value);
        var (fingerprint, hits) = gallery.SimilarTo(id, k) ?? throw Missing(id);
        return TypedResults.Ok(new SimilarResponse(fingerprint, id, k, [.. hits.Select(SearchHit.From)]));
    }

    /// <summary>Response header: the change sequence a write committed, or the one a search's index reflected.</summary>
    public const string SequenceHeader = "X-Gallery-Sequence";
    /// <summary>Request header: search only once this replica reflects at least this change.</summary>
    public const string MinSequenceHeader = "X-Gallery-Min-Sequence";

    /// <summary>Shared gallery only: with SQLite there is one process and no sequence to give.</summary>
    static void Sequence(HttpContext http, GalleryService gallery, long sequence)
    {
        if (gallery.IsShared) http.Response.Headers[SequenceHeader] = sequence.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    static RefusedException Missing(long id) => RefusedException.NotFound($"There is no gallery image {id}. GET /api/gallery lists them.");
}
