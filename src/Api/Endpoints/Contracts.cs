using System.Text.Json;
using AlexNet.Api.Gallery;
using AlexNet.Api.Inference;
using AlexNet.Model;
using AlexNet.Model.OutOfDomain;

namespace AlexNet.Api.Endpoints;

/// <summary>One class of the answer.</summary>
/// <param name="Index">Column of the model's output.</param>
/// <param name="Wnid">WordNet id, where the model's metadata has one.</param>
/// <param name="Probability">Softmax probability (the mean over the 10 crops with tenCrop=true).</param>
public sealed record ClassScore(int Index, string Label, string? Wnid, float Probability);

/// <summary>The top k classes of one image, most probable first.</summary>
/// <param name="Image">Position of the image in the request (0-based).</param>
/// <param name="Cached">Whether the answer came from the cache.</param>
/// <param name="OodScore">How unlike the model's training images this one is, from statistics of several layers learnt at
/// export (the input, the ReLU outputs, FC7): 1 is the threshold, set at a stated percentile of held-out training
/// images; higher is less like them. Null when the model has no such statistics (older or third-party files).</param>
/// <param name="OutOfDomain">OodScore above 1: the classes are not to be trusted, the image looks unlike anything the
/// model was trained on. Null when OodScore is.</param>
public sealed record ImageClassification(int Image, bool Cached, ClassScore[] Top, float? OodScore = null, bool? OutOfDomain = null);

/// <param name="Model">Fingerprint of the model that answered.</param>
public sealed record ClassifyResponse(string Model, bool TenCrop, int K, ImageClassification[] Results)
{
    public static ClassifyResponse From(ModelInfo model, Analysis[] answers, int k, bool tenCrop) => new(model.Fingerprint, tenCrop, k,
        [.. answers.Select((a, i) => new ImageClassification(i, a.Cached,
            [.. Maths.TopK(a.Prediction.Probabilities, k).Select(s => new ClassScore(s.Index, model.Labels[s.Index], model.Synsets[s.Index], s.Score))],
            a.Prediction.OodScore is { } ood ? MathF.Round(ood, 4) : null, a.Prediction.OodScore is { } o ? o > 1 : null))]);
}

/// <param name="Features">The FC7 vector (post-ReLU), FeatureDim floats.</param>
public sealed record ImageFeatures(int Image, bool Cached, float[] Features);

public sealed record FeaturesResponse(string Model, bool TenCrop, int Dim, ImageFeatures[] Results);

/// <summary>A gallery image.</summary>
/// <param name="Width">Width of the upload as decoded (after EXIF orientation).</param>
/// <param name="Sha256">SHA-256 of the uploaded bytes.</param>
public sealed record GalleryItem(long Id, string? Label, string? Note, DateTimeOffset CreatedUtc, int Width, int Height, string Sha256,
    string ThumbnailUrl)
{
    public static GalleryItem From(GalleryEntry e) =>
        new(e.Id, e.Label, e.Note, e.CreatedUtc, e.Width, e.Height, e.Sha256, $"/api/gallery/{e.Id}/thumbnail");
}

public sealed record GalleryAddResponse(string Model, GalleryItem[] Items);

public sealed record GalleryListResponse(int Total, int Offset, int Limit, GalleryItem[] Items);

/// <summary>A gallery image near the query.</summary>
/// <param name="Distance">Euclidean distance between FC7 vectors.</param>
public sealed record SearchHit(long Id, float Distance, string? Label, string? Note, string ThumbnailUrl)
{
    public static SearchHit From((GalleryEntry Entry, float Distance) h) =>
        new(h.Entry.Id, h.Distance, h.Entry.Label, h.Entry.Note, $"/api/gallery/{h.Entry.Id}/thumbnail");
}

/// <param name="Image">Position of the query image in the request (0-based).</param>
/// <param name="Neighbours">Nearest first.</param>
public sealed record ImageSearch(int Image, bool Cached, SearchHit[] Neighbours);

public sealed record SearchResponse(string Model, int K, ImageSearch[] Results);

/// <param name="Id">The gallery image searched from; it is left out of its own neighbours.</param>
public sealed record SimilarResponse(string Model, long Id, int K, SearchHit[] Neighbours);

public sealed record ClassInfo(int Index, string Label, string? Wnid);

/// <summary>The loaded model, as its ONNX metadata describes it.</summary>
/// <param name="File">File name (not the server's path).</param>
/// <param name="Provider">Execution provider running it: CPU or CUDA.</param>
/// <param name="Provenance">The training run behind it (alexnet.provenance), as written by the exporter.</param>
/// <param name="FeatureDim">0 for a third-party model whose profile names no feature output (no gallery).</param>
/// <param name="Profile">The declared preprocessing of a third-party ONNX file (Inference:ProfilePath); null for a
/// model exported by this project, which carries its preprocessing in the graph and metadata.</param>
/// <param name="Domain">What the model knows, in plain words (its provenance's or its profile's <c>domain</c>): the
/// images it was trained on and what gets meaningless answers. Null when the file does not say.</param>
/// <param name="OutOfDomain">How the model's out-of-domain score was calibrated; null when it has none. (Its statistics,
/// metadata <c>alexnet.ood</c>, are left out of Metadata: tens of kilobytes of numbers.)</param>
/// <param name="Precision">"int8" for a file quantized by <c>alexnet-train quantize</c> (metadata <c>alexnet.precision</c>),
/// else "fp32".</param>
/// <param name="Quantization">How an int8 file was quantized (metadata <c>alexnet.quantization</c>: method, calibration
/// set, its check against the float parent, the parent's fingerprint); null for a float file.</param>
public sealed record ModelResponse(string File, string Fingerprint, string? Preset, string Provider, int InputSize, int ResizeSize,
    int Classes, int FeatureDim, ClassInfo[] Labels, JsonElement? Provenance, IReadOnlyDictionary<string, string> Metadata,
    ModelProfile? Profile, string? Domain, OutOfDomainInfo? OutOfDomain = null, string Precision = ModelInfo.Float32,
    JsonElement? Quantization = null);

/// <summary>How a model's out-of-domain flag was set.</summary>
/// <param name="Percentile">The threshold (score 1) is this percentile of the calibration images' scores: about
/// 100 - Percentile per cent of in-domain images are flagged.</param>
/// <param name="Data">The held-out training images the statistics were learnt from.</param>
/// <param name="Layers">The groups of statistics compared (input.grid, input.colour, conv1, ..., fc7).</param>
public sealed record OutOfDomainInfo(double Percentile, int FitImages, int CalibrationImages, string Data, string[] Layers)
{
    public static OutOfDomainInfo? From(DomainStatistics? d) => d is null ? null
        : new(d.Percentile, d.FitImages, d.CalibrationImages, d.Data, [.. d.Groups.Select(g => g.Name)]);
}

/// <summary>The answer of POST /api/model/reload.</summary>
/// <param name="Changed">False when the file at Inference:ModelPath is the model already serving.</param>
/// <param name="Previous">Fingerprint of the model served before.</param>
/// <param name="GalleryImages">Images in the gallery index, re-embedded for the new model.</param>
public sealed record ReloadResponse(bool Changed, string? Previous, string Fingerprint, string File, string Provider, int GalleryImages, double Seconds);

/// <summary>The readiness answer when ready (otherwise a 503 problem with the same fields as extensions).</summary>
public sealed record ReadinessResponse(string Status, string Provider, string Model, string Fingerprint, int GalleryImages, int QueueLength,
    string? Degraded = null);

public sealed record LivenessResponse(string Status);
