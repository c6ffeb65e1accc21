using System.Text.Json;

namespace AlexNet.Model.Onnx;

/// <summary>
/// What a model file says about itself, beside its weights: the labels (and WordNet ids), where it came from, and,
/// written by <see cref="WriteTo"/>, the sizes and the preprocessing the service needs. The keys are
/// <see cref="OnnxContract.Keys"/>; both graph writers call the one <see cref="WriteTo"/>.
/// </summary>
public sealed record ModelMetadata(IReadOnlyList<string> Labels, IReadOnlyList<string>? Synsets, Provenance Provenance)
{
    /// <summary>
    /// Adds every key. <paramref name="specJson"/> is the network's spec as JSON (<c>alexnet.spec</c>: Preset, Classes,
    /// InputSize, ResizeSize, ..., so a reader that only needs the sizes can read it as an <see cref="AlexNetSpec"/>);
    /// <paramref name="lrn"/> says how LRN is written (<see cref="LrnForm"/>, or "none").
    /// </summary>
    public void WriteTo(OnnxModelBuilder b, string preset, string specJson, int classes, int inputSize, int resizeSize,
        string preprocessing, Normalization norm, string lrn)
    {
        if (Labels.Count != classes)
            throw new ArgumentException($"{Labels.Count} labels for {classes} classes.");
        if (Synsets is { } s && s.Count != classes)
            throw new ArgumentException($"{s.Count} synsets for {classes} classes.");
        b.Metadata(OnnxContract.Keys.Labels, JsonSerializer.Serialize(Labels));
        if (Synsets is not null) b.Metadata(OnnxContract.Keys.Synsets, JsonSerializer.Serialize(Synsets));
        b.Metadata(OnnxContract.Keys.Preset, preset);
        b.Metadata(OnnxContract.Keys.Spec, specJson);
        b.Metadata(OnnxContract.Keys.InputSize, inputSize.ToString());
        b.Metadata(OnnxContract.Keys.ResizeSize, resizeSize.ToString());
        b.Metadata(OnnxContract.Keys.PixelFormat, OnnxContract.PixelFormat);
        b.Metadata(OnnxContract.Keys.Preprocessing, preprocessing);
        b.Metadata(OnnxContract.Keys.Mean, JsonSerializer.Serialize(norm.Mean));
        b.Metadata(OnnxContract.Keys.Std, JsonSerializer.Serialize(norm.Std));
        b.Metadata(OnnxContract.Keys.Provenance, Provenance.ToJson());
        b.Metadata(OnnxContract.Keys.Lrn, lrn);
    }
}
