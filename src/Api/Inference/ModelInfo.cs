using System.Text.Json;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Model.OutOfDomain;

namespace AlexNet.Api.Inference;

/// <summary>What the loaded model file says about itself (its ONNX metadata, see OnnxContract.Keys) and its identity.</summary>
/// <param name="Fingerprint">"sha256:" and the hex SHA-256 of the file (and "+profile:" and a hash of the profile for a
/// profiled file): stored beside gallery vectors so that two
/// models' features are never mixed.</param>
/// <param name="Synsets">WordNet id per class, null where unknown.</param>
/// <param name="Profile">The declared preprocessing of a third-party file; null for a file that follows OnnxContract.</param>
/// <param name="DomainStats">What in-domain images look like (metadata <c>alexnet.ood</c> and the output <c>ood_stats</c>);
/// null for a file without them (older exports, third-party files): its answers carry no out-of-domain score.</param>
public sealed record ModelInfo(
    string Path,
    string Fingerprint,
    string? Preset,
    int InputSize,
    int ResizeSize,
    int Classes,
    int FeatureDim,
    IReadOnlyList<string> Labels,
    IReadOnlyList<string?> Synsets,
    JsonElement? Provenance,
    IReadOnlyDictionary<string, string> Metadata,
    ModelProfile? Profile = null,
    DomainStatistics? DomainStats = null)
{
    public string FileName => System.IO.Path.GetFileName(Path);
    /// <summary>What the model knows, in plain words: the profile's <c>domain</c>, else the provenance's; null when neither says.</summary>
    public string? Domain => Profile?.Domain ?? (Provenance is { ValueKind: JsonValueKind.Object } p
        && p.TryGetProperty("domain", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null);
    public const string Float32 = "fp32";
    /// <summary>"int8" for a quantized file (metadata <c>alexnet.precision</c>), else "fp32".</summary>
    public string Precision => Metadata.TryGetValue(OnnxContract.Keys.Precision, out var p) && p.Length > 0 ? p : Float32;
    /// <summary>How a quantized file was quantized (metadata <c>alexnet.quantization</c>), null when it does not say.</summary>
    public JsonElement? Quantization => Metadata.TryGetValue(OnnxContract.Keys.Quantization, out var q) ? ParseOrNull(q) : null;

    static JsonElement? ParseOrNull(string json)
    {
        try { return JsonDocument.Parse(json).RootElement.Clone(); }
        catch (JsonException) { return null; }
    }

    /// <summary>False for a profiled third-party model that names no feature output: no gallery, no /api/features.</summary>
    public bool HasFeatures => FeatureDim > 0;
    /// <summary>How uploads are resized and cropped for this model.</summary>
    public ImagePreprocessor Preprocessor => new(ResizeSize, InputSize, Profile?.Resize ?? ResizeStyle.Crop);
}
