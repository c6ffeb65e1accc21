using AlexNet.Api.Endpoints;
using Grpc.AspNetCore.Server;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Oip;

public static class OipRegistration
{
    /// <summary>The Open Inference Protocol: REST under /v2 beside /api, and gRPC on the port of Grpc:Url (when set).</summary>
    public static WebApplicationBuilder AddOpenInferenceProtocol(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<OipOptions>().BindConfiguration("Oip").ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<GrpcOptions>().BindConfiguration("Grpc");
        services.AddSingleton<OipModels>();
        services.AddSingleton<OipInference>();
        services.AddGrpc();
        services.AddOptions<GrpcServiceOptions>().Configure<IOptions<UploadOptions>>((grpc, uploads) =>
        {
            grpc.MaxReceiveMessageSize = (int)Math.Min(int.MaxValue, uploads.Value.MaxRequestBytes);   // gRPC's default is 4 MB
            grpc.MaxSendMessageSize = null;   // features of 16 images are 256 KB for the paper's model
            grpc.IgnoreUnknownServices = true;   // no catch-all route: other paths are the REST routes' (a gRPC client gets UNIMPLEMENTED)
        });
        GrpcListener.Listen(builder);
        return builder;
    }

    public static WebApplication MapOpenInferenceProtocol(this WebApplication app)
    {
        app.MapOipEndpoints();
        if (GrpcListener.Port(app.Services.GetRequiredService<IOptions<GrpcOptions>>().Value) is { } port)
            app.MapGrpcService<OipGrpcService>().RequireHost($"*:{port}");   // the gRPC port only
        return app;
    }
}

/// <summary>
/// Adds Grpc:Url to the addresses Kestrel binds without taking REST's away. Kestrel binds the "urls" setting
/// (ASPNETCORE_URLS, --urls, the launch profile), else ASPNETCORE_HTTP_PORTS / HTTPS_PORTS, else http://localhost:5000;
/// an explicit Listen call would make it ignore all of them, so instead the gRPC URL is appended to what it would have
/// bound, and <see cref="Http.ServerLimits"/> makes that one port HTTP/2 only (gRPC without TLS needs h2c).
/// Addresses in Kestrel:Endpoints replace all of these; with those, add the gRPC endpoint there too (Protocols: Http2).
/// </summary>
public static class GrpcListener
{
    /// <summary>The port of Grpc:Url, or null when gRPC is off (empty). Throws naming the key when the URL is not
    /// http:// with a port.</summary>
    public static int? Port(GrpcOptions options)
    {
        if (string.IsNullOrWhiteSpace(options.Url)) return null;
        var url = options.Url.Replace("://+:", "://0.0.0.0:").Replace("://*:", "://0.0.0.0:");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp || uri.IsDefaultPort)
            throw new InvalidOperationException($"Grpc:Url is '{options.Url}'; give an http:// URL with a port of its own (for example " +
                "http://127.0.0.1:5081; gRPC is served as HTTP/2 without TLS), or leave it empty to turn gRPC off.");
        return uri.Port;
    }

    public static void Listen(WebApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection("Grpc").Get<GrpcOptions>() ?? new GrpcOptions();
        if (Port(options) is not { } port) return;
        var rest = RestUrls(builder.Configuration);
        if (rest.FirstOrDefault(u => PortOf(u) == port) is { } clash)
            throw new InvalidOperationException($"Grpc:Url ({options.Url}) and the REST address {clash} share port {port}; give gRPC a port of its own.");
        builder.WebHost.UseSetting(WebHostDefaults.ServerUrlsKey, string.Join(';', rest.Append(options.Url!)));
    }

    /// <summary>What Kestrel binds for REST when nothing else is added (as ASP.NET Core's GenericWebHostService reads it).</summary>
    static List<string> RestUrls(IConfiguration configuration)
    {
        static string[] Split(string? s) => (s ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var urls = Split(configuration[WebHostDefaults.ServerUrlsKey]);
        if (urls.Length > 0) return [.. urls];
        List<string> ports = [.. Split(configuration[WebHostDefaults.HttpPortsKey]).Select(p => $"http://*:{p}"),
            .. Split(configuration[WebHostDefaults.HttpsPortsKey]).Select(p => $"https://*:{p}")];
        return ports.Count > 0 ? ports : ["http://localhost:5000"];
    }

    static int? PortOf(string url) =>
        Uri.TryCreate(url.Replace("://+:", "://0.0.0.0:").Replace("://*:", "://0.0.0.0:"), UriKind.Absolute, out var u) ? u.Port : null;
}
