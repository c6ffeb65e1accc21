using System.Reflection;
using System.Text.Json.Serialization;
using AlexNet.Api.Models;
using AlexNet.Model;

namespace AlexNet.Api.Oip;

/// <summary>Metadata for a tensor: a variable dimension is -1.</summary>
public sealed record OipTensorMetadata(string Name, string Datatype, long[] Shape);

/// <summary>GET /v2/models/{name}: the protocol's model metadata.</summary>
public sealed record OipModelMetadata(string Name, string[] Versions, string Platform, OipTensorMetadata[] Inputs, OipTensorMetadata[] Outputs);

/// <summary>GET /v2: the protocol's server metadata.</summary>
public sealed record OipServerMetadata(string Name, string Version, string[] Extensions);

public sealed record OipLive(bool Live);
public sealed record OipReady(bool Ready);
public sealed record OipModelReady(string Name, bool Ready);

/// <summary>The protocol's error body: {"error": "..."}.</summary>
public sealed record OipError([property: JsonPropertyName("error")] string Error);

/// <summary>
/// The served models as the Open Inference Protocol sees them (<see cref="ModelRegistry"/>: the default one named by
/// Oip:ModelName or its file's name, version Oip:ModelVersion; the "Models" list's by their names), their inputs and outputs. Two inputs, one of which a request
/// sends: <see cref="OnnxContract.Input"/> (FP32 [N, 3, S, S], RGB 0..255 as the service's preprocessing writes it;
/// a profiled model's normalisation is applied by the server) and <see cref="EncodedInput"/> (BYTES [N], encoded
/// images that the server decodes and preprocesses as /api/classify does). Outputs: <see cref="OnnxContract.Probabilities"/>
/// FP32 [N, classes] and, when the model has them, <see cref="OnnxContract.Features"/> FP32 [N, FeatureDim].
/// </summary>
public sealed class OipModels(ModelRegistry registry)
{
    public const string EncodedInput = "image_bytes";
    /// <summary>The spec's platform name for an ONNX model run by ONNX Runtime.</summary>
    public const string Platform = "onnx_onnxv1";
    public static readonly string[] Extensions = ["binary_tensor_data", "classification"];

    public static OipServerMetadata Server() =>
        new("alexnet", typeof(OipModels).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
            ?? "1.0.0", Extensions);

    /// <summary>The served model of that name (and <paramref name="version"/> when given); a 404 refusal otherwise.</summary>
    public ServedModel Check(string name, string? version)
    {
        if (string.IsNullOrEmpty(name)) throw RefusedException.NotFound("The request names no model.");
        var model = registry.Resolve(name);
        if (!string.IsNullOrEmpty(version) && !string.Equals(version, model.Version, StringComparison.Ordinal))
            throw RefusedException.NotFound($"Model '{name}' has no version '{version}'; it has version '{model.Version}'.");
        return model;
    }

    /// <summary>The server is ready when every model is.</summary>
    public bool Ready => registry.All.All(m => m.Ready);

    /// <summary>The model's metadata; a 503 refusal while it is not loaded.</summary>
    public OipModelMetadata Metadata(string name, string? version)
    {
        var served = Check(name, version);
        var m = served.Host.Require().Model;
        var s = m.InputSize;
        OipTensorMetadata[] outputs = m.HasFeatures
            ? [new(OnnxContract.Probabilities, Datatypes.Fp32, [-1, m.Classes]), new(OnnxContract.Features, Datatypes.Fp32, [-1, m.FeatureDim])]
            : [new(OnnxContract.Probabilities, Datatypes.Fp32, [-1, m.Classes])];
        return new OipModelMetadata(served.Name, [served.Version], Platform,
            [new(OnnxContract.Input, Datatypes.Fp32, [-1, 3, s, s]), new(EncodedInput, Datatypes.Bytes, [-1])], outputs);
    }
}
