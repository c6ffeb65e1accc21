using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Http;

/// <summary>
/// Guards writes with the X-Api-Key header, compared in constant time. With no Security:ApiKey configured the
/// writes are refused (403): secure by default. Runs before the body is read.
/// </summary>
public sealed class ApiKeyFilter(IOptions<SecurityOptions> options) : IEndpointFilter
{
    public const string Header = "X-Api-Key";
    readonly byte[]? _key = string.IsNullOrEmpty(options.Value.ApiKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.Value.ApiKey));

    public ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        if (_key is null)
            return ValueTask.FromResult<object?>(TypedResults.Problem(
                "Writes are disabled because the server has no API key configured. Set Security:ApiKey (environment " +
                "variable Security__ApiKey) on the server, then send it in the X-Api-Key header.",
                statusCode: StatusCodes.Status403Forbidden, title: "Writes are disabled"));
        var sent = context.HttpContext.Request.Headers[Header].ToString();
        // Hashing first gives both sides the same length, so FixedTimeEquals leaks neither content nor length.
        if (sent.Length == 0 || !CryptographicOperations.FixedTimeEquals(_key, SHA256.HashData(Encoding.UTF8.GetBytes(sent))))
        {
            context.HttpContext.Response.Headers.WWWAuthenticate = Header;
            return ValueTask.FromResult<object?>(TypedResults.Problem(
                sent.Length == 0 ? $"This endpoint needs the API key in the {Header} header." : $"The {Header} header does not match the server's API key.",
                statusCode: StatusCodes.Status401Unauthorized, title: "API key required"));
        }
        return next(context);
    }
}

public static class ApiKeyExtensions
{
    /// <summary>Requires the X-Api-Key header (see <see cref="ApiKeyFilter"/>) and documents 401 and 403.</summary>
    public static RouteHandlerBuilder RequireApiKey(this RouteHandlerBuilder builder) => builder
        .AddEndpointFilter<ApiKeyFilter>()
        .WithMetadata(new RequiresApiKey())
        .ProducesProblem(StatusCodes.Status401Unauthorized)
        .ProducesProblem(StatusCodes.Status403Forbidden);
}

/// <summary>Marks an endpoint for the OpenAPI security requirement.</summary>
public sealed class RequiresApiKey;
