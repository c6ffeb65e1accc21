using AlexNet.Model.Imaging;

namespace AlexNet.Api;

/// <summary>Why the service refuses a request. The HTTP layer maps each to a status (Http/Refusals.cs); nothing below
/// the endpoints speaks HTTP.</summary>
public enum Refusal
{
    /// <summary>Missing or malformed input (400).</summary>
    BadInput,
    /// <summary>The body, an image or a form is over a limit (413).</summary>
    TooLarge,
    /// <summary>A media type or image format we do not accept (415).</summary>
    UnsupportedFormat,
    /// <summary>Well-formed but not processable: an image that does not decode or is over the pixel budget, a model
    /// file that does not load (422).</summary>
    Unprocessable,
    /// <summary>No such thing (404).</summary>
    NotFound,
    /// <summary>The request conflicts with the service's state: gallery full, a model without features, a reload
    /// already running (409).</summary>
    Conflict,
    /// <summary>The client was too slow to send its request (408).</summary>
    Timeout,
    /// <summary>This client is over its share (requests, work or uploads at once); try again after RetryAfterSeconds (429).</summary>
    TooManyRequests,
    /// <summary>Overloaded or not ready; try again after RetryAfterSeconds (503).</summary>
    Unavailable,
    /// <summary>The disk is full: nothing was stored (507).</summary>
    InsufficientStorage,
}

/// <summary>
/// A refusal we mean to give, raised anywhere below the handlers (upload reading, decoding, the queue, the gallery,
/// a reload) and turned into one problem+json answer by the endpoint filter (Http/Refusals.cs). Faults stay ordinary
/// exceptions (500). The message is the problem's detail: it says what to do next.
/// </summary>
public sealed class RefusedException(Refusal kind, string title, string detail, int? retryAfterSeconds = null) : Exception(detail)
{
    public Refusal Kind { get; } = kind;
    public string Title { get; } = title;
    public int? RetryAfterSeconds { get; } = retryAfterSeconds;

    public static RefusedException BadInput(string detail) => new(Refusal.BadInput, "Bad request", detail);
    public static RefusedException TooLarge(string detail) => new(Refusal.TooLarge, "Content too large", detail);
    public static RefusedException Unsupported(string detail) => new(Refusal.UnsupportedFormat, "Unsupported media type", detail);
    public static RefusedException Overloaded(string detail, int retryAfter) => new(Refusal.Unavailable, "Service unavailable", detail, retryAfter);
    public static RefusedException NotFound(string detail) => new(Refusal.NotFound, "Not found", detail);
    public static RefusedException TooMany(string detail, int retryAfter) => new(Refusal.TooManyRequests, "Too many requests", detail, retryAfter);

    /// <summary>While a profiled third-party model without a feature output serves.</summary>
    public static RefusedException NoFeatures(string modelFile) => new(Refusal.Conflict, "The model gives no features",
        $"The model now serving ({modelFile}) is a third-party classifier whose profile names no feature output, so images cannot be " +
        "embedded: /api/features and gallery search and adds are off. Classification works. Stored gallery images are kept; serve a " +
        "model with features (or name its feature output in the profile's 'features') to use them.");

    /// <summary>Formats we don't accept are unsupported; images that don't decode or exceed the pixel budget are unprocessable.</summary>
    public static RefusedException From(ImageRejectedException e, int index, int count)
    {
        var which = count > 1 ? $"Image {index} (0-based): " : "";
        return e.Reason switch
        {
            ImageRejection.UnsupportedFormat => new(Refusal.UnsupportedFormat, "Unsupported image format",
                $"{which}{e.Message} Send a JPEG, PNG, GIF (first frame is used) or WebP image."),
            ImageRejection.TooLarge => new(Refusal.Unprocessable, "Image too large to decode",
                $"{which}{e.Message} Scale it down and send it again."),
            _ => new(Refusal.Unprocessable, "Image does not decode",
                $"{which}{e.Message} Check that the file is a complete image."),
        };
    }
}
