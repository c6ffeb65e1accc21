using System.ComponentModel.DataAnnotations;

namespace AlexNet.Api.Oip;

/// <summary>The "Oip" section: how the served model is named in the Open Inference Protocol (/v2 and gRPC).</summary>
public sealed class OipOptions
{
    /// <summary>The model's name in /v2/models/{name}. Empty: the model file's name without its extension
    /// (models/fashion-mnist-compact.onnx is "fashion-mnist-compact").</summary>
    [RegularExpression("^[A-Za-z0-9_.-]{1,100}$", ErrorMessage = "Oip:ModelName takes 1 to 100 letters, digits, '_', '.' or '-'.")]
    public string? ModelName { get; set; }
    /// <summary>The one version served (/v2/models/{name}/versions/{version}); a request that names no version gets it.</summary>
    [Required, RegularExpression("^[A-Za-z0-9_.-]{1,100}$", ErrorMessage = "Oip:ModelVersion takes 1 to 100 letters, digits, '_', '.' or '-'.")]
    public string ModelVersion { get; set; } = "1";
}

/// <summary>The "Grpc" section.</summary>
public sealed class GrpcOptions
{
    /// <summary>Where the Open Inference Protocol's gRPC service listens: an http:// URL with a port of its own, served as
    /// HTTP/2 without TLS (h2c). REST keeps the addresses ASPNETCORE_URLS, --urls, ASPNETCORE_HTTP_PORTS or the launch
    /// profile give it. Empty turns gRPC off.</summary>
    public string? Url { get; set; } = "http://127.0.0.1:5081";
}
