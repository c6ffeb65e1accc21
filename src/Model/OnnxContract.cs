using System.Text.Json;

namespace AlexNet.Model;

/// <summary>
/// What an exported model file promises, and what the server relies on. The input is decoded RGB pixels
/// (N, 3, H, W) as floats in 0..255; normalisation ((x - mean) / std) happens inside the graph, so serving cannot
/// drift from training. Outputs: softmax probabilities (N, classes) and post-ReLU FC7 features (N, FeatureDim).
/// Optional, added after them by the export (<see cref="OutOfDomain.DomainStatisticsGraph"/>): <c>ood_stats</c> (N, D),
/// summaries of several layers, with what in-domain rows look like in the metadata key <c>alexnet.ood</c>
/// (<see cref="OutOfDomain.DomainStatistics"/>); a client that does not ask for it is not affected.
/// </summary>
public static class OnnxContract
{
    public const string Input = "image";
    public const string Probabilities = "probabilities";
    public const string Features = "features";
    public const string BatchDim = "N";
    public const long Opset = 17;
    public const long IrVersion = 8;

    /// <summary>Keys of the model's metadata_props.</summary>
    public static class Keys
    {
        public const string Labels = "alexnet.labels";            // JSON array of strings, index order
        public const string Synsets = "alexnet.synsets";          // JSON array of WordNet ids or "" (optional)
        public const string Preset = "alexnet.preset";
        public const string Spec = "alexnet.spec";                // JSON of AlexNetSpec
        public const string InputSize = "alexnet.input_size";
        public const string ResizeSize = "alexnet.resize_size";
        public const string PixelFormat = "alexnet.pixel_format";
        public const string Mean = "alexnet.mean";                // JSON [r, g, b] in 0..255
        public const string Std = "alexnet.std";                  // JSON [r, g, b] in 0..255
        public const string Provenance = "alexnet.provenance";    // JSON of Provenance
        public const string Preprocessing = "alexnet.preprocessing";
        public const string Lrn = "alexnet.lrn";                  // how LRN is written in the graph
        public const string Precision = "alexnet.precision";      // "int8" for a quantized file; absent means float32
        public const string Quantization = "alexnet.quantization"; // JSON: how it was quantized (QuantizationInfo)
    }

    public const string PixelFormat = "RGB float32 NCHW, 0..255, normalised inside the graph";
    public const string Preprocessing = "shorter side to resize_size (bilinear), central square, central input_size crop";
}

/// <summary>Per-channel normalisation in 0..255 pixel units: (x - Mean) / Std.</summary>
public sealed record Normalization(float[] Mean, float[] Std)
{
    /// <summary>The per-channel means of Caffe's ImageNet mean image, RGB, no std (the paper subtracts the mean only).</summary>
    public static Normalization ImageNetMeanOnly { get; } = new([122.679f, 116.669f, 104.007f], [1f, 1f, 1f]);
}

/// <summary>Where a model came from; written into the ONNX metadata and the model card.</summary>
public sealed record Provenance
{
    public string Dataset { get; init; } = "";
    public int Epochs { get; init; }
    public string CreatedUtc { get; init; } = DateTime.UtcNow.ToString("O");
    public string Command { get; init; } = "";
    public string Init { get; init; } = "";
    public Dictionary<string, double> Metrics { get; init; } = new();
    public string? Note { get; init; }
    /// <summary>Images per split the run was limited to (<c>--limit</c>), when it was: a smoke run, not a full one.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public int? Limit { get; init; }
    /// <summary>What the model knows, in plain words for the person who uploads (what its training images look like and
    /// what it gets wrong), when the exporter knew it: the service shows it in /api/model and beside the upload box.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Domain { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);
    public static Provenance FromJson(string json) => JsonSerializer.Deserialize<Provenance>(json, JsonOptions)!;
    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = false };
}
