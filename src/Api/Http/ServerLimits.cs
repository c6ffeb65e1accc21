using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Http;

/// <summary>Kestrel's and the form reader's limits, from the upload options (docs/security.md lists each).</summary>
public static class ServerLimits
{
    public static IServiceCollection AddServerLimits(this IServiceCollection services)
    {
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<UploadOptions>>((kestrel, uploads) =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = uploads.Value.MaxRequestBytes;   // Kestrel's default is 30,000,000 bytes
            kestrel.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
        });
        services.AddOptions<FormOptions>().Configure<IOptions<UploadOptions>>((form, uploads) =>
        {
            // Form parsing buffers every part before the handler runs, so its limits are the upload limits.
            form.MultipartBodyLengthLimit = uploads.Value.MaxRequestBytes;
            form.MemoryBufferThreshold = uploads.Value.MemoryBufferBytes;   // default 64 KB: a photo went through a temp file
            form.BufferBodyLengthLimit = uploads.Value.MaxRequestBytes;
            form.ValueCountLimit = 3 * uploads.Value.MaxImagesPerRequest + 8;   // images, labels, notes (default 1024)
            form.ValueLengthLimit = 4 * uploads.Value.MaxNoteLength + 1024;     // UTF-8 bytes of a label or note
            form.KeyLengthLimit = 256;
            form.MultipartHeadersCountLimit = 8;
            form.MultipartHeadersLengthLimit = 8 * 1024;
        });
        return services;
    }
}
