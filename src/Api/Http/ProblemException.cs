using AlexNet.Model.Imaging;
using Microsoft.AspNetCore.Http.HttpResults;

namespace AlexNet.Api.Http;

/// <summary>
/// A client-facing refusal raised below the handlers (upload reading, decoding, the queue) and turned into a
/// problem+json answer by the handler. Only for answers we mean to give; faults stay ordinary exceptions (500).
/// </summary>
public sealed class ProblemException(int status, string title, string detail, int? retryAfterSeconds = null)
    : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;
    public int? RetryAfterSeconds { get; } = retryAfterSeconds;

    public ProblemHttpResult ToResult(HttpContext http)
    {
        if (RetryAfterSeconds is { } s) http.Response.Headers.RetryAfter = s.ToString();
        return TypedResults.Problem(Message, statusCode: Status, title: Title);
    }

    public static ProblemException BadRequest(string detail) => new(StatusCodes.Status400BadRequest, "Bad request", detail);
    public static ProblemException TooLarge(string detail) => new(StatusCodes.Status413PayloadTooLarge, "Content too large", detail);
    public static ProblemException Unsupported(string detail) => new(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type", detail);
    public static ProblemException Overloaded(string detail, int retryAfter) => new(StatusCodes.Status503ServiceUnavailable, "Service unavailable", detail, retryAfter);
    public static ProblemException NotFound(string detail) => new(StatusCodes.Status404NotFound, "Not found", detail);

    /// <summary>409 while a profiled third-party model without a feature output serves.</summary>
    public static ProblemException NoFeatures(string modelFile) => new(StatusCodes.Status409Conflict, "The model gives no features",
        $"The model now serving ({modelFile}) is a third-party classifier whose profile names no feature output, so images cannot be " +
        "embedded: /api/features and gallery search and adds are off. Classification works. Stored gallery images are kept; serve a " +
        "model with features (or name its feature output in the profile's 'features') to use them.");

    /// <summary>415 for formats we don't accept, 422 for images that don't decode or exceed the pixel budget.</summary>
    public static ProblemException From(ImageRejectedException e, int index, int count)
    {
        var which = count > 1 ? $"Image {index} (0-based): " : "";
        return e.Reason switch
        {
            ImageRejection.UnsupportedFormat => new(StatusCodes.Status415UnsupportedMediaType, "Unsupported image format",
                $"{which}{e.Message} Send a JPEG, PNG, GIF (first frame is used) or WebP image."),
            ImageRejection.TooLarge => new(StatusCodes.Status422UnprocessableEntity, "Image too large to decode",
                $"{which}{e.Message} Scale it down and send it again."),
            _ => new(StatusCodes.Status422UnprocessableEntity, "Image does not decode",
                $"{which}{e.Message} Check that the file is a complete image."),
        };
    }
}
