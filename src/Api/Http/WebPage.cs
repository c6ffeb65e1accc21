using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Http;

/// <summary>The web page (wwwroot) and the start-up line that says where the service listens.</summary>
public static class WebPage
{
    /// <summary>The content security policy of the page: scripts, styles, images and fetches from this origin only; no
    /// inline script or style, no framing.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

    /// <summary>"/" is wwwroot/index.html: the web page, which talks to this service only.</summary>
    public static WebApplication UseWebPage(this WebApplication app)
    {
        app.UseDefaultFiles();
        app.UseStaticFiles(new StaticFileOptions
        {
            OnPrepareResponse = c =>
            {
                // Unversioned file names: revalidate each time (the ETag makes that a 304).
                c.Context.Response.Headers.CacheControl = "no-cache";
                c.Context.Response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
                c.Context.Response.Headers.XContentTypeOptions = "nosniff";
            },
        });
        return app;
    }

    /// <summary>Logs each address the service listens on, with the page's, Swagger's, readiness's and metrics' URLs.</summary>
    public static WebApplication LogAddressesOnStart(this WebApplication app)
    {
        app.Lifetime.ApplicationStarted.Register(() =>
        {
            var addresses = app.Services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            var grpcPort = Oip.GrpcListener.Port(app.Services.GetRequiredService<IOptions<Oip.GrpcOptions>>().Value);
            foreach (var address in addresses)
                if (grpcPort is not null && Uri.TryCreate(address, UriKind.Absolute, out var uri) && uri.Port == grpcPort)
                    app.Logger.LogInformation("Listening on {Address}: gRPC (HTTP/2, Open Inference Protocol, inference.GRPCInferenceService).", address);
                else app.Logger.LogInformation("Listening on {Address}: Swagger UI {Address}/swagger, readiness {Address}/health/ready, metrics {Address}/metrics.",
                    address, address, address, address);
        });
        return app;
    }
}
