using System.Numerics.Tensors;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace AlexNet.Model;

/// <summary>How a profiled model wants its pixels resized before the crop.</summary>
[JsonConverter(typeof(CamelCaseEnum<ResizeStyle>))]
public enum ResizeStyle
{
    /// <summary>Shorter side to ResizeSize (bilinear), central square, central InputSize crop: torchvision's
    /// Resize(256) + CenterCrop(224), and the paper's first step.</summary>
    Crop,
    /// <summary>The whole image to ResizeSize x ResizeSize, aspect ratio not kept, then the central InputSize crop
    /// (Caffe's warp to 256x256 before its central crop). ResizeSize defaults to InputSize: no crop.</summary>
    Squash,
}

[JsonConverter(typeof(CamelCaseEnum<ChannelOrder>))]
public enum ChannelOrder { Rgb, Bgr }

/// <summary>What the scores output holds.</summary>
[JsonConverter(typeof(CamelCaseEnum<ScoreKind>))]
public enum ScoreKind
{
    /// <summary>Raw scores: the service applies softmax.</summary>
    Logits,
    /// <summary>Already softmaxed (each row sums to 1); checked at load.</summary>
    Probabilities,
}

/// <summary>
/// The declared preprocessing and outputs of a third-party ONNX classifier, one that does not follow
/// <see cref="OnnxContract"/> (no normalisation inside the graph, other names, logits instead of probabilities, no
/// labels in the metadata): torch.onnx.export files, the ONNX Model Zoo's bvlcalexnet. The service converts its
/// contract input (RGB pixels 0..255, CHW) with <see cref="InputTransform"/> and its outputs with softmax when needed,
/// so the same endpoints serve both kinds. Read from a JSON file the operator names (Inference:ProfilePath, or
/// <c>model.profile.json</c> beside <c>model.onnx</c>); never from a request.
/// </summary>
/// <remarks>A pixel p (0..255) of channel c in the model's order becomes <c>(p * PixelRange / 255 - Mean[c]) / Std[c]</c>.
/// torchvision: PixelRange 1, Mean [0.485, 0.456, 0.406], Std [0.229, 0.224, 0.225], RGB. Caffe: PixelRange 255,
/// Mean [103.939, 116.779, 123.68] (B, G, R), Std [1, 1, 1], BGR.</remarks>
public sealed record ModelProfile
{
    /// <summary>Name of the float (N, 3, S, S) input.</summary>
    public string Input { get; init; } = "";
    /// <summary>S: the side of the square input. Must equal the file's.</summary>
    public int InputSize { get; init; }
    public ResizeStyle Resize { get; init; } = ResizeStyle.Crop;
    /// <summary>The shorter side (Crop) or the square (Squash) before the central InputSize crop; default
    /// S x 256 / 224 for Crop and S for Squash.</summary>
    public int? ResizeSize { get; init; }
    public ChannelOrder ChannelOrder { get; init; } = ChannelOrder.Rgb;
    /// <summary>The value a 255 pixel has before the mean is taken: 1 (torchvision) or 255 (Caffe).</summary>
    public float PixelRange { get; init; } = 255;
    /// <summary>Per channel, in the model's channel order and in PixelRange units.</summary>
    public float[] Mean { get; init; } = [0, 0, 0];
    public float[] Std { get; init; } = [1, 1, 1];
    /// <summary>Name of the (N, classes) output.</summary>
    public string Scores { get; init; } = "";
    public ScoreKind ScoresAre { get; init; } = ScoreKind.Logits;
    /// <summary>Name of an (N, D) output to use as the image's feature vector (for the gallery), or null: then the
    /// gallery and /api/features answer 409 while this model serves.</summary>
    public string? Features { get; init; }
    /// <summary>Class names, one per line in output order (or "wnid&lt;TAB&gt;name" lines): a file path, relative to
    /// the profile's folder.</summary>
    public string Labels { get; init; } = "";
    /// <summary>What the model knows, in plain words for the person who uploads (what its training images look like;
    /// what gets meaningless answers). Optional; shown in /api/model and on the page.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]   // so profiles without it keep their hash
    public string? Domain { get; init; }

    /// <summary>The shorter side before the crop.</summary>
    public int EffectiveResizeSize => ResizeSize ?? (Resize == ResizeStyle.Squash ? InputSize : (int)Math.Round(InputSize * 256.0 / 224));

    public static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,   // a misspelt key is an error, not a default
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        WriteIndented = true,
    };

    /// <summary>Reads and checks <paramref name="path"/>. Throws <see cref="InvalidDataException"/> naming the file and the key
    /// (also when the file is missing: a configured profile that is not there is a broken configuration, not a missing model).</summary>
    public static ModelProfile Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataException($"Model profile not found: {path} (Inference:ProfilePath).");
        ModelProfile? profile;
        try
        {
            profile = JsonSerializer.Deserialize<ModelProfile>(File.ReadAllText(path), JsonOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a valid model profile: {e.Message}", e);
        }
        if (profile is null) throw new InvalidDataException($"{path}: the profile is null.");
        var problems = profile.Problems();
        if (problems.Count > 0) throw new InvalidDataException($"{path}: {string.Join("; ", problems)}.");
        return profile;
    }

    /// <summary>What is wrong with the profile on its own (the file is checked against it when loaded).</summary>
    public IReadOnlyList<string> Problems()
    {
        var p = new List<string>();
        if (string.IsNullOrWhiteSpace(Input)) p.Add("'input' (the input's name) is required");
        if (string.IsNullOrWhiteSpace(Scores)) p.Add("'scores' (the name of the class-score output) is required");
        if (string.IsNullOrWhiteSpace(Labels)) p.Add("'labels' (a file of class names, one per line) is required");
        if (InputSize is < 8 or > 4096) p.Add($"'inputSize' is {InputSize}; expected 8..4096");
        if (EffectiveResizeSize < InputSize || EffectiveResizeSize > 8 * InputSize)
            p.Add($"'resizeSize' is {EffectiveResizeSize}; expected from 'inputSize' ({InputSize}) to 8 times it");
        if (!(PixelRange > 0) || !float.IsFinite(PixelRange)) p.Add($"'pixelRange' is {PixelRange}; expected a positive number (1 or 255)");
        if (Mean is not { Length: 3 } || Mean.Any(m => !float.IsFinite(m))) p.Add("'mean' needs three finite numbers, in the model's channel order");
        if (Std is not { Length: 3 } || Std.Any(s => !(s > 0) || !float.IsFinite(s))) p.Add("'std' needs three positive numbers, in the model's channel order");
        if (Features is { } f && string.IsNullOrWhiteSpace(f)) p.Add("'features' is empty; leave it out when the model has no feature output");
        return p;
    }

    /// <summary>Sidecar convention: <c>dir/name.onnx</c> is described by <c>dir/name.profile.json</c>.</summary>
    public static string SidecarPath(string modelPath) => Path.ChangeExtension(modelPath, ".profile.json");

    /// <summary>Short hash of the profile's content, so that answers and gallery vectors of one file under two
    /// profiles are told apart.</summary>
    public string Hash() =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(this, JsonOptions))))[..16];

    /// <summary>The conversion from contract pixels (RGB 0..255, CHW) to this model's input.</summary>
    public InputTransform Transform() => new(InputSize, ChannelOrder, PixelRange, Mean, Std);
}

/// <summary>Enum values as camelCase strings ("crop", "bgr", "logits") wherever they are written; read case-insensitively.</summary>
public sealed class CamelCaseEnum<T>() : JsonStringEnumConverter<T>(JsonNamingPolicy.CamelCase, allowIntegerValues: false) where T : struct, Enum;

/// <summary>
/// Turns rows of contract input (RGB pixels 0..255, (3, S, S)) into a profiled model's input, in place: channels
/// reordered, then <c>x * PixelRange / 255</c>, minus the mean, over the std, per channel.
/// </summary>
public sealed class InputTransform
{
    readonly int _plane;
    readonly bool _swapRb;
    readonly float[] _scale = new float[3], _shift = new float[3];

    public InputTransform(int size, ChannelOrder order, float pixelRange, float[] mean, float[] std)
    {
        _plane = size * size;
        _swapRb = order == ChannelOrder.Bgr;
        for (var c = 0; c < 3; c++)
        {
            _scale[c] = pixelRange / 255f / std[c];
            _shift[c] = -mean[c] / std[c];
        }
    }

    /// <summary>Converts <paramref name="n"/> rows at the start of <paramref name="rows"/>.</summary>
    public void Apply(Span<float> rows, int n)
    {
        for (var i = 0; i < n; i++)
        {
            var row = rows.Slice(i * 3 * _plane, 3 * _plane);
            if (_swapRb) SwapPlanes(row[.._plane], row.Slice(2 * _plane, _plane));
            for (var c = 0; c < 3; c++)
            {
                var plane = row.Slice(c * _plane, _plane);
                TensorPrimitives.Multiply(plane, _scale[c], plane);
                TensorPrimitives.Add(plane, _shift[c], plane);
            }
        }
    }

    static void SwapPlanes(Span<float> a, Span<float> b)
    {
        Span<float> tmp = stackalloc float[256];
        for (var o = 0; o < a.Length; o += tmp.Length)
        {
            var n = Math.Min(tmp.Length, a.Length - o);
            a.Slice(o, n).CopyTo(tmp);
            b.Slice(o, n).CopyTo(a.Slice(o, n));
            tmp[..n].CopyTo(b.Slice(o, n));
        }
    }
}
