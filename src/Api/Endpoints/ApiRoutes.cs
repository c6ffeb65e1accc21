using AlexNet.Api.Http;
using Prometheus;

namespace AlexNet.Api.Endpoints;

public static class ApiRoutes
{
    /// <summary>/api (rate limited per client), /health and /metrics. Refusals from any handler become problem+json
    /// in one place (<see cref="Refusals"/>).</summary>
    public static WebApplication MapApi(this WebApplication app)
    {
        var api = app.MapGroup("/api").RequireRateLimiting(RateLimiting.PerClient).AnswerRefusals()
            // No cookies or ambient auth (writes need X-Api-Key), so no CSRF risk: no antiforgery (aspnet/Announcements#509).
            .DisableAntiforgery();
        api.MapClassifyEndpoints();
        api.MapGalleryEndpoints();
        api.MapModelEndpoints();
        api.MapModelsEndpoints();
        api.MapSampleEndpoints();
        app.MapHealthEndpoints();
        app.MapMetrics();
        return app;
    }
}
