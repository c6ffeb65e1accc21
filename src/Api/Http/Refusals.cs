using Microsoft.AspNetCore.Http.HttpResults;

namespace AlexNet.Api.Http;

/// <summary>
/// The one place a <see cref="RefusedException"/> becomes an answer: an endpoint filter on every group that turns it
/// into problem+json with the kind's status (and Retry-After when the refusal names one), so handlers hold no
/// try/catch. The decoder's <c>ImageRejectedException</c> reaches here already as a refusal (the pipeline names the
/// image's position).
/// </summary>
public static class Refusals
{
    public static int Status(Refusal kind) => kind switch
    {
        Refusal.BadInput => StatusCodes.Status400BadRequest,
        Refusal.TooLarge => StatusCodes.Status413PayloadTooLarge,
        Refusal.UnsupportedFormat => StatusCodes.Status415UnsupportedMediaType,
        Refusal.Unprocessable => StatusCodes.Status422UnprocessableEntity,
        Refusal.NotFound => StatusCodes.Status404NotFound,
        Refusal.Conflict => StatusCodes.Status409Conflict,
        Refusal.Timeout => StatusCodes.Status408RequestTimeout,
        Refusal.TooManyRequests => StatusCodes.Status429TooManyRequests,
        Refusal.Unavailable => StatusCodes.Status503ServiceUnavailable,
        Refusal.InsufficientStorage => StatusCodes.Status507InsufficientStorage,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    public static ProblemHttpResult ToProblem(this RefusedException e, HttpContext http)
    {
        if (e.RetryAfterSeconds is { } s) http.Response.Headers.RetryAfter = s.ToString();
        return TypedResults.Problem(e.Message, statusCode: Status(e.Kind), title: e.Title);
    }

    /// <summary>Answers refusals raised by the group's handlers as problems.</summary>
    public static TBuilder AnswerRefusals<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            try
            {
                return await next(context);
            }
            catch (RefusedException e)
            {
                return e.ToProblem(context.HttpContext);
            }
        });
}
