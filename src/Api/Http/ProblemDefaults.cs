namespace AlexNet.Api.Http;

/// <summary>
/// Problem details for answers that come without a body of ours: a route that matches nothing (404), a method a
/// path does not take (405), a parameter that does not bind (400), an unexpected fault (500). ASP.NET Core gives
/// them a title only; the detail says what to do next.
/// </summary>
public static class ProblemDefaults
{
    public static IServiceCollection AddApiProblemDetails(this IServiceCollection services) => services.AddProblemDetails(o =>
        o.CustomizeProblemDetails = c =>
        {
            if (c.ProblemDetails.Detail is not null) return;
            var request = c.HttpContext.Request;
            var path = request.Path.ToUriComponent();   // escaped, so nothing the client sent is echoed raw
            if (path.Length > 120) path = path[..120] + "...";
            c.ProblemDetails.Detail = c.ProblemDetails.Status switch
            {
                StatusCodes.Status404NotFound =>
                    $"No endpoint answers {request.Method} {path}. Gallery ids are whole numbers; GET /swagger lists the API.",
                StatusCodes.Status405MethodNotAllowed =>
                    $"{request.Method} is not allowed on {path}; GET /swagger lists the methods each path takes.",
                StatusCodes.Status400BadRequest =>
                    "A route or query parameter could not be read: k, offset and limit are whole numbers within int range, " +
                    "tenCrop is true or false. GET /swagger lists the parameters.",
                StatusCodes.Status500InternalServerError =>
                    "The server failed unexpectedly. Its log has the details under this traceId.",
                _ => null,
            };
        });
}
