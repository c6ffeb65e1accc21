using System.Globalization;
using AlexNet.Model.Imaging;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;

namespace AlexNet.Api.Http;

/// <summary>One uploaded image: its bytes (never its name: nothing is saved under a client's name) and the
/// optional label and note sent with it.</summary>
public sealed record Upload(byte[] Bytes, string? Label, string? Note);

/// <summary>
/// Reads images from a request, checking sizes before anything is decoded (AspNetCore.Docs file-uploads): a
/// multipart form with one or more file fields named <c>image</c> (and optional <c>label</c>/<c>note</c> fields,
/// matched to the images by position), or a raw body whose Content-Type is image/* (label and note from the query).
/// The declared media type is not trusted: the decoder checks the bytes. Throws <see cref="RefusedException"/>.
/// </summary>
public static class Uploads
{
    public const string Field = "image";

    /// <summary>Reads the images; the whole body must arrive within Uploads:BodyTimeoutSeconds (408 past it).</summary>
    public static Task<IReadOnlyList<Upload>> ReadAsync(HttpRequest request, UploadOptions o, int maxImages, CancellationToken ct) =>
        WithinDeadlineAsync(request, o, token => ReadCoreAsync(request, o, maxImages, token), ct);

    /// <summary>The whole body, whatever its type (an Open Inference Protocol request: JSON, or JSON followed by binary
    /// tensors), at most Uploads:MaxRequestBytes (413 beyond), within Uploads:BodyTimeoutSeconds (408 past it).</summary>
    public static Task<byte[]> ReadWholeBodyAsync(HttpRequest request, UploadOptions o, CancellationToken ct) =>
        WithinDeadlineAsync(request, o, async token =>
        {
            if (request.ContentLength > o.MaxRequestBytes)
                throw RefusedException.TooLarge($"The request body is {request.ContentLength:N0} bytes; the limit is {o.MaxRequestBytes:N0}.");
            return await ReadBodyAsync(request.Body, o.MaxRequestBytes, o.MemoryBufferBytes, token, "The request body");
        }, ct);

    static async Task<T> WithinDeadlineAsync<T>(HttpRequest request, UploadOptions o, Func<CancellationToken, Task<T>> read, CancellationToken ct)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(TimeSpan.FromSeconds(o.BodyTimeoutSeconds));
        try
        {
            return await read(deadline.Token);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !ct.IsCancellationRequested)
        {
            request.HttpContext.Response.Headers.Connection = "close";   // the rest of the body is not read
            throw new RefusedException(Refusal.Timeout, "Request timeout",
                $"The request body did not arrive within {o.BodyTimeoutSeconds} s (Uploads:BodyTimeoutSeconds). Send it again, faster.");
        }
        catch (RefusedException p) when (p.Kind is Refusal.TooLarge or Refusal.Timeout)
        {
            // The rest of the body stays unread and Kestrel resets the connection rather than drain it: say so, or the
            // client sends its next request on a connection that is about to go (HttpClient then fails it).
            request.HttpContext.Response.Headers.Connection = "close";
            throw;
        }
    }

    static async Task<IReadOnlyList<Upload>> ReadCoreAsync(HttpRequest request, UploadOptions o, int maxImages, CancellationToken ct)
    {
        if (request.ContentLength > o.MaxRequestBytes)
            throw RefusedException.TooLarge($"The request body is {request.ContentLength:N0} bytes; the limit is {o.MaxRequestBytes:N0}.");
        var type = request.ContentType is { } ct0 && MediaTypeHeaderValue.TryParse(ct0, out var parsed) ? parsed : null;
        if (type is null)
            throw request.ContentLength is null or 0 && !request.Headers.ContainsKey(HeaderNames.TransferEncoding)
                ? RefusedException.BadInput(Hint("The request has no body."))
                : RefusedException.Unsupported(Hint("The request has no valid Content-Type."));
        if (type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
            return await ReadFormAsync(request, o, maxImages, ct);
        if (type.MediaType.StartsWith("image/", StringComparison.OrdinalIgnoreCase))
        {
            var bytes = await ReadBodyAsync(request.Body, o.MaxImageBytes, o.MemoryBufferBytes, ct);
            if (bytes.Length == 0) throw RefusedException.BadInput(Hint("The image is empty."));
            return [new Upload(bytes, Text(request.Query["label"], "label", o.MaxLabelLength), Text(request.Query["note"], "note", o.MaxNoteLength))];
        }
        throw RefusedException.Unsupported(Hint($"Content-Type {type.MediaType} is not accepted."));
    }

    static async Task<IReadOnlyList<Upload>> ReadFormAsync(HttpRequest request, UploadOptions o, int maxImages, CancellationToken ct)
    {
        IFormCollection form;
        try
        {
            form = await request.ReadFormAsync(ct);
        }
        catch (InvalidDataException e) when (e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase) &&
            !e.Message.Contains("boundary", StringComparison.OrdinalIgnoreCase))   // a 200-character boundary is malformed, not large
        {
            throw RefusedException.TooLarge($"The form exceeds a limit: {e.Message}");   // FormOptions, see Program.cs
        }
        catch (InvalidDataException e)
        {
            throw RefusedException.BadInput(Hint($"The multipart form is malformed: {e.Message}"));
        }
        catch (IOException e) when (e.Message.Contains("Unexpected end", StringComparison.OrdinalIgnoreCase))
        {
            throw RefusedException.BadInput(Hint($"The multipart form is malformed: {e.Message}"));
        }
        catch (BadHttpRequestException e)
        {
            throw FromKestrel(e);
        }
        var files = form.Files.GetFiles(Field);
        if (files.Count == 0)
            throw RefusedException.BadInput(Hint(form.Files.Count > 0
                ? $"The form has files named {string.Join(", ", form.Files.Select(f => $"'{f.Name}'").Distinct())} but none named '{Field}'."
                : $"The form has no file field named '{Field}'."));
        if (files.Count > maxImages)
            throw RefusedException.TooLarge($"The form has {files.Count} images; this endpoint takes at most {maxImages} per request.");
        var labels = form["label"];
        var notes = form["note"];
        var uploads = new List<Upload>(files.Count);
        for (var i = 0; i < files.Count; i++)
        {
            var file = files[i];
            var which = files.Count > 1 ? $"Image {i} (0-based)" : "The image";
            if (file.Length == 0) throw RefusedException.BadInput(Hint($"{which} is empty."));
            if (file.Length > o.MaxImageBytes)
                throw RefusedException.TooLarge($"{which} is {file.Length:N0} bytes; the limit is {o.MaxImageBytes:N0} per image.");
            await using var stream = file.OpenReadStream();
            var bytes = await ReadBodyAsync(stream, o.MaxImageBytes, o.MemoryBufferBytes, ct);
            uploads.Add(new Upload(bytes, Text(i < labels.Count ? labels[i] : null, "label", o.MaxLabelLength),
                Text(i < notes.Count ? notes[i] : null, "note", o.MaxNoteLength)));
        }
        return uploads;
    }

    /// <summary>Reads at most <paramref name="limit"/> bytes; one more is a 413, however the length was declared. While
    /// the body arrives, at most <paramref name="inMemory"/> bytes are kept in memory and the rest in a temp file (as
    /// the form reader does with a multipart body), so a stalled upload holds little memory; the image's bytes are
    /// put in one array once they are all there.</summary>
    static async Task<byte[]> ReadBodyAsync(Stream body, long limit, int inMemory, CancellationToken ct, string what = "The image")
    {
        await using var buffer = new FileBufferingWriteStream(inMemory);
        var chunk = new byte[81920];
        long length = 0;
        try
        {
            int read;
            while ((read = await body.ReadAsync(chunk, ct)) > 0)
            {
                if ((length += read) > limit)
                    throw RefusedException.TooLarge($"{what} is larger than {limit:N0} bytes.");
                await buffer.WriteAsync(chunk.AsMemory(0, read), ct);
            }
        }
        catch (BadHttpRequestException e)
        {
            throw FromKestrel(e);
        }
        using var all = new MemoryStream((int)length);
        await buffer.DrainBufferAsync(all, ct);
        return all.ToArray();
    }

    /// <summary>Kestrel's own refusals while the body is read: 413 past MaxRequestBodySize, 408 below the minimum data
    /// rate, 400 for a broken body.</summary>
    static RefusedException FromKestrel(BadHttpRequestException e) => e.StatusCode switch
    {
        StatusCodes.Status413PayloadTooLarge => RefusedException.TooLarge($"The request body is larger than the server accepts ({e.Message})."),
        StatusCodes.Status408RequestTimeout => new(Refusal.Timeout, "Request timeout", $"The body arrived too slowly ({e.Message})."),
        _ => new(Refusal.BadInput, "Bad request", e.Message),
    };

    static string? Text(string? value, string name, int max)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        value = value.Trim();
        if (value.Length > max) throw RefusedException.BadInput($"The {name} has {value.Length} characters; the limit is {max}.");
        if (value.Any(char.IsControl)) throw RefusedException.BadInput($"The {name} contains control characters.");
        // Bidi controls (U+202E turns "gpj.exe" into "exe.jpg" on screen) and zero-width characters are Unicode's
        // format category: a label shown on the page must read as what it is.
        if (value.FirstOrDefault(c => char.GetUnicodeCategory(c) == UnicodeCategory.Format) is var f and not '\0')
            throw RefusedException.BadInput($"The {name} contains an invisible formatting character (U+{(int)f:X4}: bidi controls and " +
                "zero-width characters can make a label read as something else). Send plain text.");
        return value;
    }

    static string Hint(string problem) =>
        $"{problem} Send a multipart/form-data body with a file field named '{Field}', or the raw image bytes with " +
        $"Content-Type {string.Join(", ", SafeImageDecoder.AcceptedMediaTypes)}.";
}
