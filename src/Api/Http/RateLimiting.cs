using System.Threading.RateLimiting;
using AlexNet.Api.Inference;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Http;

/// <summary>A fixed window per client address on /api (RateLimit:PermitLimit per RateLimit:WindowSeconds).
/// Rejections are 429 problems with Retry-After (the built-in limiter says 503 unless told).</summary>
public static class RateLimiting
{
    public const string PerClient = "per-client";

    public static IServiceCollection AddApiRateLimiting(this IServiceCollection services) => services.AddRateLimiter(o =>
    {
        o.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
        o.AddPolicy(PerClient, http =>
        {
            var limits = http.RequestServices.GetRequiredService<IOptions<RateLimitOptions>>().Value;
            // Behind a reverse proxy, ForwardedHeaders:TrustedProxies makes this the client's address (ProxyHeaders).
            var client = http.Connection.RemoteIpAddress?.ToString() ?? "unknown";
            return RateLimitPartition.GetFixedWindowLimiter(client, _ => new FixedWindowRateLimiterOptions
            {
                PermitLimit = limits.PermitLimit,
                Window = TimeSpan.FromSeconds(limits.WindowSeconds),
                QueueLimit = 0,
                AutoReplenishment = true,
            });
        });
        o.OnRejected = async (context, ct) =>
        {
            var http = context.HttpContext;
            var limits = http.RequestServices.GetRequiredService<IOptions<RateLimitOptions>>().Value;
            var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait)
                ? Math.Max(1, (int)Math.Ceiling(wait.TotalSeconds))
                : limits.WindowSeconds;
            http.Response.Headers.RetryAfter = retryAfter.ToString();
            ApiMetrics.Rejected.WithLabels("rate_limited").Inc();
            await http.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
            {
                HttpContext = http,
                ProblemDetails =
                {
                    Status = StatusCodes.Status429TooManyRequests,
                    Title = "Too many requests",
                    Detail = $"This client may send {limits.PermitLimit} requests per {limits.WindowSeconds} s to /api. Retry after {retryAfter} s.",
                },
            });
        };
    });
}
