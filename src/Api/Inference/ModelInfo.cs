using System.Text.Json;

namespace AlexNet.Api.Inference;

/// <summary>What the loaded model file says about itself (its ONNX metadata, see OnnxContract.Keys) and its identity.</summary>
/// <param name="Fingerprint">"sha256:" and the hex SHA-256 of the file: stored beside gallery vectors so that two
/// models' features are never mixed.</param>
/// <param name="Synsets">WordNet id per class, null where unknown.</param>
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
    IReadOnlyDictionary<string, string> Metadata)
{
    public string FileName => System.IO.Path.GetFileName(Path);
}
