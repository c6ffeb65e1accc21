namespace AlexNet.Api.Http;

/// <summary>
/// Kestrel takes any token as an HTTP method, and the HTTP metrics label requests by method: made-up methods would
/// each add series to /metrics without bound (23,000 of them grew it from 58 KB to 56 MB). Methods outside the
/// standard set are answered 501 here, before the metrics see them.
/// </summary>
public static class KnownMethods
{
    static readonly HashSet<string> Standard = new(StringComparer.Ordinal)
    {
        HttpMethods.Get, HttpMethods.Head, HttpMethods.Post, HttpMethods.Put, HttpMethods.Delete, HttpMethods.Options,
        HttpMethods.Patch, HttpMethods.Trace, HttpMethods.Connect,
    };

    public static WebApplication UseKnownMethodsOnly(this WebApplication app)
    {
        app.Use(async (http, next) =>
        {
            if (Standard.Contains(http.Request.Method))
            {
                await next(http);
                return;
            }
            await TypedResults.Problem("This service answers GET, HEAD, POST, PUT, DELETE, OPTIONS and PATCH only.",
                statusCode: StatusCodes.Status501NotImplemented, title: "Method not implemented").ExecuteAsync(http);
        });
        return app;
    }
}
