using System.Net;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using AlexNet.Api.Oip;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Http;

/// <summary>Kestrel's and the form reader's limits, from the Server and Uploads options (docs/security.md lists each).</summary>
public static class ServerLimits
{
    public static IServiceCollection AddServerLimits(this IServiceCollection services)
    {
        services.AddSingleton<ConnectionsPerClient>();
        services.AddSingleton<UploadGate>();
        services.AddOptions<KestrelServerOptions>()
            .Configure<IOptions<UploadOptions>, IOptions<ServerOptions>, ConnectionsPerClient, IOptions<GrpcOptions>>((kestrel, uploads, server, perClient, grpc) =>
            {
                var s = server.Value;
                kestrel.AddServerHeader = false;
                kestrel.Limits.MaxRequestBodySize = uploads.Value.MaxRequestBytes;   // Kestrel's default is 30,000,000 bytes
                kestrel.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
                kestrel.Limits.MaxConcurrentConnections = MaxConnections(s);
                kestrel.Limits.MaxConcurrentUpgradedConnections = MaxConnections(s);
                kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(s.KeepAliveTimeoutSeconds);
                kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(s.RequestHeadersTimeoutSeconds);
                kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(s.MinBodyBytesPerSecond, TimeSpan.FromSeconds(s.MinBodyRateGraceSeconds));
                var grpcPort = GrpcListener.Port(grpc.Value);
                kestrel.ConfigureEndpointDefaults(listen =>
                {
                    listen.Use(perClient.Middleware);
                    if (grpcPort is not null && listen.IPEndPoint?.Port == grpcPort) listen.Protocols = HttpProtocols.Http2;   // gRPC: h2c
                });
            });
        services.AddOptions<FormOptions>().Configure<IOptions<UploadOptions>>((form, uploads) =>
        {
            // Form parsing buffers every part before the handler runs, so its limits are the upload limits.
            form.MultipartBodyLengthLimit = uploads.Value.MaxRequestBytes;
            form.MemoryBufferThreshold = uploads.Value.MemoryBufferBytes;   // default 64 KB: a photo went through a temp file
            form.BufferBodyLengthLimit = uploads.Value.MaxRequestBytes;
            form.ValueCountLimit = 3 * uploads.Value.MaxImagesPerRequest + 8;   // images, labels, notes (default 1024)
            form.ValueLengthLimit = 4 * uploads.Value.MaxNoteLength + 1024;     // UTF-8 bytes of a label or note
            form.KeyLengthLimit = 256;
            form.MultipartHeadersCountLimit = 8;
            form.MultipartHeadersLengthLimit = 8 * 1024;
        });
        return services;
    }

    /// <summary>Server:MaxConnections, or a quarter of the process's open-file limit (at most 4,096) when it is 0: a
    /// connection Kestrel refuses still takes a descriptor until it is closed, and the runtime, ONNX Runtime, SQLite and
    /// temp files need theirs (with half, one run of the flood test lost the process).</summary>
    public static int MaxConnections(ServerOptions options) =>
        options.MaxConnections > 0 ? options.MaxConnections : (int)Math.Clamp(OpenFileLimit() / 4, 64, 4096);

    /// <summary>The soft open-file limit (RLIMIT_NOFILE) from /proc/self/limits; 8,192 where it cannot be read.</summary>
    public static long OpenFileLimit()
    {
        try
        {
            var line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
            var fields = line?[14..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields is [var soft, ..] && long.TryParse(soft, out var n) ? n : 8192;   // "unlimited" too
        }
        catch (IOException)
        {
            return 8192;
        }
        catch (UnauthorizedAccessException)
        {
            return 8192;
        }
    }
}

/// <summary>
/// Server:MaxConnectionsPerClient: a connection from an address that already holds that many is closed at once, so
/// one address cannot take every connection Kestrel allows. Connections from ForwardedHeaders:TrustedProxies are
/// not counted (a proxy carries many clients).
/// </summary>
public sealed class ConnectionsPerClient(IOptions<ServerOptions> options, IConfiguration configuration)
{
    readonly int _limit = options.Value.MaxConnectionsPerClient;
    readonly ProxyOptions _proxies = ProxyHeaders.Read(configuration);
    readonly Lock _lock = new();
    readonly Dictionary<IPAddress, int> _open = [];

    public Microsoft.AspNetCore.Connections.ConnectionDelegate Middleware(Microsoft.AspNetCore.Connections.ConnectionDelegate next) => async connection =>
    {
        var address = (connection.RemoteEndPoint as IPEndPoint)?.Address;
        if (address is null || ProxyHeaders.IsTrusted(_proxies, address))
        {
            await next(connection);
            return;
        }
        lock (_lock)
        {
            var n = _open.GetValueOrDefault(address);
            if (n >= _limit)
            {
                Inference.ApiMetrics.Rejected.WithLabels("client_connections").Inc();
                return;   // not served: Kestrel closes it
            }
            _open[address] = n + 1;
        }
        try
        {
            await next(connection);
        }
        finally
        {
            lock (_lock)
                if (--_open[address] == 0) _open.Remove(address);
        }
    };
}
