using System.Security.Cryptography;
using AlexNet.Api.Gallery;
using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using Microsoft.AspNetCore.Http.HttpResults;
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

    public static async Task<Results<Created<GalleryAddResponse>, ProblemHttpResult>> AddAsync(HttpRequest request,
        InferencePipeline pipeline, GalleryService gallery, ModelHost host, AdmissionControl admission, IOptions<UploadOptions> options,
        CancellationToken ct)
    {
        try
        {
            using var slot = admission.Enter();
            using var lease = host.Acquire();
            var classifier = lease.Classifier;
            if (!classifier.Model.HasFeatures) throw ProblemException.NoFeatures(classifier.Model.FileName);
            var uploads = await Uploads.ReadAsync(request, options.Value, options.Value.MaxImagesPerRequest, ct);
            var rows = await Task.WhenAll(uploads.Select(async (u, i) =>
            {
                var decoded = await pipeline.PrepareAsync(classifier, u.Bytes, i, uploads.Count, ct);
                var prediction = await pipeline.PredictAsync(classifier, decoded.Prepared, tenCrop: false, ct);   // the central crop, as search uses
                pipeline.Remember(classifier, u.Bytes, tenCrop: false, prediction);
                return gallery.Describe(decoded.Prepared, decoded.Width, decoded.Height, Convert.ToHexStringLower(SHA256.HashData(u.Bytes)),
                    u.Label, u.Note, classifier.Model.Fingerprint, prediction.Features);
            }));
            var (fingerprint, created) = gallery.Add(rows);   // re-embedded there if the model was replaced meanwhile
            return TypedResults.Created($"/api/gallery/{created[0].Id}", new GalleryAddResponse(fingerprint, [.. created.Select(GalleryItem.From)]));
        }
        catch (ProblemException p)
        {
            return p.ToResult(request.HttpContext);
        }
    }

    /// <param name="offset">Images to skip.</param>
    /// <param name="limit">Images to return, 1 to 1000.</param>
    public static Results<Ok<GalleryListResponse>, ProblemHttpResult> List(GalleryService gallery, HttpContext http, int offset = 0, int limit = 50)
    {
        try
        {
            if (offset < 0 || limit < 1 || limit > 1000)
                throw ProblemException.BadRequest($"offset is {offset} and limit {limit}; send offset >= 0 and limit from 1 to 1000.");
            var (total, page) = gallery.List(offset, limit);
            return TypedResults.Ok(new GalleryListResponse(total, offset, limit, [.. page.Select(GalleryItem.From)]));
        }
        catch (ProblemException p)
        {
            return p.ToResult(http);
        }
    }

    public static Results<Ok<GalleryItem>, ProblemHttpResult> Get(long id, GalleryService gallery, HttpContext http)
    {
        try
        {
            return gallery.Get(id) is { } e ? TypedResults.Ok(GalleryItem.From(e)) : throw Missing(id);
        }
        catch (ProblemException p)
        {
            return p.ToResult(http);
        }
    }

    public static Results<FileContentHttpResult, ProblemHttpResult> Thumbnail(long id, GalleryService gallery, HttpContext http)
    {
        try
        {
            return gallery.Thumbnail(id) is { } png ? TypedResults.File(png, "image/png") : throw Missing(id);
        }
        catch (ProblemException p)
        {
            return p.ToResult(http);
        }
    }

    public static Results<NoContent, ProblemHttpResult> Delete(long id, GalleryService gallery, HttpContext http)
    {
        try
        {
            return gallery.Delete(id) ? TypedResults.NoContent() : throw Missing(id);
        }
        catch (ProblemException p)
        {
            return p.ToResult(http);
        }
    }

    /// <param name="k">How many neighbours, 1 to Uploads:MaxK.</param>
    public static async Task<Results<Ok<SearchResponse>, ProblemHttpResult>> SearchAsync(HttpRequest request,
        InferencePipeline pipeline, GalleryService gallery, ModelHost host, AdmissionControl admission, IOptions<UploadOptions> options,
        CancellationToken ct, int k = 5)
    {
        try
        {
            using var slot = admission.Enter();
            ClassifyEndpoints.CheckK(k, options.Value);
            var uploads = await Uploads.ReadAsync(request, options.Value, options.Value.MaxImagesPerRequest, ct);
            // A query vector and the gallery's must come from one model. If the model is replaced between the two,
            // the query is computed again with the new one (a reload swaps both at once, so this settles at once).
            for (var attempt = 1; ; attempt++)
            {
                using var lease = host.Acquire();
                var model = lease.Classifier.Model;
                if (!model.HasFeatures) throw ProblemException.NoFeatures(model.FileName);
                var answers = await pipeline.AnalyzeAsync(lease.Classifier, [.. uploads.Select(u => u.Bytes)], tenCrop: false, ct);
                var hits = answers.Select(a => gallery.Search(a.Prediction.Features, model.Fingerprint, k)).ToArray();
                if (hits.Any(h => h is null))
                {
                    if (attempt == 3)
                        throw ProblemException.Overloaded("The model was replaced while this search ran. Send it again.", 1);
                    await Task.Delay(10 * attempt, ct);
                    continue;
                }
                ClassifyEndpoints.SetCacheHeader(request.HttpContext, answers);
                return TypedResults.Ok(new SearchResponse(model.Fingerprint, k, [.. answers.Select((a, i) =>
                    new ImageSearch(i, a.Cached, [.. hits[i]!.Select(SearchHit.From)]))]));
            }
        }
        catch (ProblemException p)
        {
            return p.ToResult(request.HttpContext);
        }
    }

    /// <param name="k">How many neighbours, 1 to Uploads:MaxK.</param>
    public static Results<Ok<SimilarResponse>, ProblemHttpResult> Similar(long id, GalleryService gallery, ModelHost host,
        IOptions<UploadOptions> options, HttpContext http, int k = 5)
    {
        try
        {
            host.Require();
            ClassifyEndpoints.CheckK(k, options.Value);
            var (fingerprint, hits) = gallery.SimilarTo(id, k) ?? throw Missing(id);
            return TypedResults.Ok(new SimilarResponse(fingerprint, id, k, [.. hits.Select(SearchHit.From)]));
        }
        catch (ProblemException p)
        {
            return p.ToResult(http);
        }
    }

    static ProblemException Missing(long id) => ProblemException.NotFound($"There is no gallery image {id}. GET /api/gallery lists them.");
}
