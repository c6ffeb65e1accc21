using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace AlexNet.Model.Imaging;

/// <summary>Why an image was refused. Maps to HTTP 415 (format) and 422 (content, size) in the service.</summary>
public enum ImageRejection { UnsupportedFormat, TooLarge, Undecodable }

public sealed class ImageRejectedException(ImageRejection reason, string message, Exception? inner = null)
    : Exception(message, inner)
{
    public ImageRejection Reason { get; } = reason;
}

/// <summary>Limits of the decoder. Defaults follow notes/imagesharp-hardening.md.</summary>
public sealed record DecoderLimits
{
    public int MaxSide { get; init; } = 8192;
    public long MaxPixels { get; init; } = 40_000_000;
    /// <summary>Largest single buffer the allocator hands out (per buffer, not per image).</summary>
    public int AllocationLimitMegabytes { get; init; } = 192;
}

/// <summary>
/// The one decoder that training and serving share. ImageSharp 2.1.13's defaults amplify memory and CPU on crafted
/// files, so this registers only PNG, JPEG, GIF (first frame) and WebP, reads the header before decoding and refuses
/// images over the pixel budget, ignores PNG text chunks, decodes single-threaded with a capped allocator, applies
/// EXIF orientation, and composites alpha onto white (JPEGs, which have none, decode straight to RGB). Thread-safe.
/// </summary>
public sealed class SafeImageDecoder
{
    readonly Configuration _config;
    public DecoderLimits Limits { get; }

    public SafeImageDecoder(DecoderLimits? limits = null)
    {
        Limits = limits ?? new DecoderLimits();
        _config = new Configuration(new PngConfigurationModule(), new JpegConfigurationModule(),
            new GifConfigurationModule(), new WebpConfigurationModule())
        {
            MaxDegreeOfParallelism = 1,
            MemoryAllocator = MemoryAllocator.Create(new MemoryAllocatorOptions
            {
                AllocationLimitMegabytes = Limits.AllocationLimitMegabytes,
                MaximumPoolSizeMegabytes = 32,
            }),
        };
        _config.ImageFormatsManager.SetDecoder(PngFormat.Instance, new PngDecoder { IgnoreMetadata = true });
        _config.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = FrameDecodingMode.First });
    }

    public static SafeImageDecoder Default { get; } = new();

    /// <summary>Media types whose formats this decoder registers.</summary>
    public static IReadOnlyList<string> AcceptedMediaTypes { get; } = ["image/jpeg", "image/png", "image/gif", "image/webp"];

    /// <summary>Decodes to RGB. Throws <see cref="ImageRejectedException"/> for anything that is not a usable image.</summary>
    public Image<Rgb24> Decode(byte[] bytes) => Decode(bytes, bytes.Length);

    /// <summary>Decodes the first <paramref name="length"/> bytes of <paramref name="buffer"/>.</summary>
    public Image<Rgb24> Decode(byte[] buffer, int length)
    {
        var bytes = buffer.AsSpan(0, length);
        if (bytes.IsEmpty) throw new ImageRejectedException(ImageRejection.Undecodable, "The image is empty.");
        IImageFormat? format;
        IImageInfo? info;
        try
        {
            using var header = new MemoryStream(buffer, 0, length, writable: false);
            info = Image.Identify(_config, header, out format);
        }
        catch (Exception e)
        {
            throw Map(e);
        }
        if (info is null || format is null)
            throw new ImageRejectedException(ImageRejection.UnsupportedFormat,
                "Not a JPEG, PNG, GIF or WebP image (the bytes were checked, not the file name).");
        if (info.Width <= 0 || info.Height <= 0)
            throw new ImageRejectedException(ImageRejection.Undecodable, $"The {format.Name} image declares {info.Width}x{info.Height} pixels.");
        if (info.Width > Limits.MaxSide || info.Height > Limits.MaxSide || (long)info.Width * info.Height > Limits.MaxPixels)
            throw new ImageRejectedException(ImageRejection.TooLarge,
                $"The {format.Name} image is {info.Width}x{info.Height}; the limit is {Limits.MaxSide} a side and {Limits.MaxPixels:N0} pixels.");

        if (format is JpegFormat)
        {
            // No alpha in a JPEG: decode straight to RGB, skipping the RGBA buffer, the blend onto white and the copy
            // (same pixels; decoding plus preprocessing about 30% faster, docs/benchmarks.md).
            Image<Rgb24> rgb;
            try
            {
                rgb = Image.Load<Rgb24>(_config, bytes);
            }
            catch (Exception e)
            {
                throw Map(e);
            }
            if (rgb.Metadata.ExifProfile is not null) rgb.Mutate(x => x.AutoOrient());
            return rgb;
        }

        Image<Rgba32> image;
        try
        {
            image = Image.Load<Rgba32>(_config, bytes);
        }
        catch (Exception e)
        {
            throw Map(e);
        }
        using (image)
        {
            image.Mutate(x => x.AutoOrient().BackgroundColor(Color.White));   // alpha over white: hidden pixels never leak
            return image.CloneAs<Rgb24>();
        }
    }

    public Image<Rgb24> Decode(Stream stream, long maxBytes = 64 << 20)
    {
        using var ms = new MemoryStream();
        var buffer = new byte[81920];
        int read;
        while ((read = stream.Read(buffer)) > 0)
        {
            if (ms.Length + read > maxBytes)
                throw new ImageRejectedException(ImageRejection.TooLarge, $"The image is larger than {maxBytes:N0} bytes.");
            ms.Write(buffer, 0, read);
        }
        return Decode(ms.GetBuffer(), (int)ms.Length);
    }

    static ImageRejectedException Map(Exception e) => e switch
    {
        ImageRejectedException r => r,
        NotSupportedException or UnknownImageFormatException =>
            new ImageRejectedException(ImageRejection.UnsupportedFormat, $"This image variant is not supported: {e.Message}", e),
        InvalidImageContentException or ImageFormatException =>
            new ImageRejectedException(ImageRejection.Undecodable, $"The image is corrupt or truncated: {e.Message}", e),
        InvalidMemoryOperationException =>
            new ImageRejectedException(ImageRejection.TooLarge, $"Decoding would need more memory than allowed: {e.Message}", e),
        // Anything else thrown inside the decoder (OutOfMemoryException included) is a decoder bug on hostile input.
        _ => new ImageRejectedException(ImageRejection.Undecodable, $"The image could not be decoded ({e.GetType().Name}).", e),
    };
}
