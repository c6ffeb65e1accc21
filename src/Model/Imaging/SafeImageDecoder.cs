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

/// <summary>Limits of the decoder; docs/security.md ("Decoder limits") gives each value and why.</summary>
public sealed record DecoderLimits
{
    public int MaxSide { get; init; } = 8192;
    public long MaxPixels { get; init; } = 40_000_000;
    /// <summary>Largest single buffer the allocator hands out (per buffer, not per image).</summary>
    public int AllocationLimitMegabytes { get; init; } = 192;

    /// <summary>
    /// Wall-clock budget of one decode, on top of the caller's token. Only the JPEG decoder observes it inside the
    /// decode (between scans and rows of blocks); PNG, GIF and WebP are checked between steps only, so for them the
    /// structural limits below are what bound the work. <see cref="Timeout.InfiniteTimeSpan"/> turns it off.
    /// 5 s, not less: a real 8192x4880 progressive JPEG (cjpeg) took 1.4-2.2 s here with both cores busy, and the scan
    /// budget below admits up to ~0.8 s more; the deadline is the backstop, not the first line.
    /// </summary>
    public TimeSpan DecodeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>SOS markers in a JPEG. libjpeg's default progressive script writes 10 (6 for greyscale), mozjpeg's
    /// about a dozen, baseline files 1 to 4; 32 leaves room for unusual scripts (one scan per coefficient band).</summary>
    public int MaxJpegScans { get; init; } = 32;

    /// <summary>
    /// The JPEG decoder's work: the sum over scans of the samples of the components each scan covers (ImageSharp
    /// visits every block once per scan, data or not, ~30 ms per 40 M samples). libjpeg's default script costs 14
    /// samples a pixel at 4:4:4 (about 8 at 4:2:0); 24 x the 40 Mpx budget admits any real encoder's script at full size
    /// (under 1 s of scans), while a large frame gets fewer scans than a small one.
    /// </summary>
    public long MaxJpegScanSamples { get; init; } = 24 * 40_000_000L;

    /// <summary>Marker segments of any kind, and the DHT and DQT segments among them. Real files have tens of
    /// segments: one DHT per scan (at most four tables each) and one to four DQT.</summary>
    public int MaxJpegSegments { get; init; } = 1024;
    public int MaxJpegHuffmanSegments { get; init; } = 128;
    public int MaxJpegQuantizationSegments { get; init; } = 16;

    /// <summary>
    /// Huffman groups of a lossless WebP bitstream (VP8L, or a losslessly compressed ALPH). ImageSharp allocates 24-40
    /// KB of managed tables a group before reading them, outside the allocator's limit. A group serves at least one
    /// tile of the entropy image, so more groups than tiles are refused as well; libwebp's encoder (and ImageSharp's,
    /// a port of it) writes at most 2,600 tiles' worth of histograms (MAX_HUFF_IMAGE_SIZE since libwebp 0.5).
    /// TODO: libwebp before 0.5 (2015) allowed larger histogram images; no file from it was at hand to check.
    /// </summary>
    public int MaxWebpHuffmanGroups { get; init; } = 2600;
}

/// <summary>
/// The one decoder that training and serving share. ImageSharp 2.1.13's defaults amplify memory and CPU on crafted
/// files, so this registers only PNG, JPEG, GIF (first frame) and WebP, reads the header before decoding and refuses
/// images over the pixel budget, reads JPEG markers and lossless WebP headers for work the header does not show (scan
/// bombs, Huffman-group bombs: <see cref="JpegStructure"/>, <see cref="WebpStructure"/>), ignores PNG text chunks,
/// decodes single-threaded with a capped allocator and a deadline, applies EXIF orientation, and composites alpha onto
/// white (JPEGs, which have none, decode straight to RGB). Thread-safe. Limits and what the deadline can stop:
/// docs/security.md ("Decoder limits").
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

    /// <summary>Decodes to RGB. Throws <see cref="ImageRejectedException"/> for anything that is not a usable image,
    /// and <see cref="OperationCanceledException"/> only when <paramref name="cancellationToken"/> is cancelled.</summary>
    public Image<Rgb24> Decode(byte[] bytes, CancellationToken cancellationToken = default) => Decode(bytes, bytes.Length, cancellationToken);

    /// <summary>
    /// Decodes the first <paramref name="length"/> bytes of <paramref name="buffer"/>. The decode stops at
    /// <see cref="DecoderLimits.DecodeTimeout"/> (an <see cref="ImageRejectedException"/>, TooLarge) or when
    /// <paramref name="cancellationToken"/> is cancelled (an <see cref="OperationCanceledException"/>), whichever
    /// comes first, at the points where ImageSharp checks (see <see cref="DecoderLimits.DecodeTimeout"/>).
    /// </summary>
    public Image<Rgb24> Decode(byte[] buffer, int length, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var deadline = DecodeDeadlines.Start(Limits.DecodeTimeout);   // its own thread, not the pool's timers
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            return DecodeCore(buffer, length, either.Token);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ImageRejectedException(ImageRejection.TooLarge,
                $"Decoding took longer than the {Limits.DecodeTimeout.TotalSeconds:0.###} s allowed.", e);
        }
    }

    Image<Rgb24> DecodeCore(byte[] buffer, int length, CancellationToken token)
    {
        var bytes = buffer.AsSpan(0, length);
        if (bytes.IsEmpty) throw new ImageRejectedException(ImageRejection.Undecodable, "The image is empty.");
        if (WebpStructure.IsWebp(bytes)) CheckWebpStructure(bytes);   // before Identify, which allocates declared chunk sizes
        IImageFormat? format;
        IImageInfo? info;
        try
        {
            using var header = new MemoryStream(buffer, 0, length, writable: false);
            info = Image.Identify(_config, header, out format);
        }
        catch (Exception e) when (e is not OperationCanceledException)
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
        if (format is JpegFormat) CheckJpegStructure(bytes);
        token.ThrowIfCancellationRequested();

        var decoder = _config.ImageFormatsManager.FindDecoder(format);
        if (format is JpegFormat)
        {
            // No alpha in a JPEG: decode straight to RGB, skipping the RGBA buffer, the blend onto white and the copy
            // (same pixels; decoding plus preprocessing about 30% faster, docs/benchmarks.md).
            var rgb = Load<Rgb24>(decoder, buffer, length, token);
            if (rgb.Metadata.ExifProfile is not null) rgb.Mutate(x => x.AutoOrient());
            return rgb;
        }

        using var image = Load<Rgba32>(decoder, buffer, length, token);
        token.ThrowIfCancellationRequested();
        image.Mutate(x => x.AutoOrient().BackgroundColor(Color.White));   // alpha over white: hidden pixels never leak
        return image.CloneAs<Rgb24>();
    }

    /// <summary>The format's own decoder with the deadline's token (Image.Load passes none).</summary>
    Image<TPixel> Load<TPixel>(IImageDecoder decoder, byte[] buffer, int length, CancellationToken token)
        where TPixel : unmanaged, IPixel<TPixel>
    {
        try
        {
            using var stream = new MemoryStream(buffer, 0, length, writable: false);
            return decoder.Decode<TPixel>(_config, stream, token);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw Map(e);
        }
    }

    /// <summary>Refuses JPEGs whose structure asks for more decoder work than any real encoder writes (issue #20).</summary>
    void CheckJpegStructure(ReadOnlySpan<byte> bytes)
    {
        var s = JpegStructure.Read(bytes);
        if (s.Frames > 1)
            throw new ImageRejectedException(ImageRejection.Undecodable,
                $"The JPEG has {s.Frames} frame headers (SOF); a JPEG image has one.");
        if (s.ScanBeforeFrame)
            throw new ImageRejectedException(ImageRejection.Undecodable, "The JPEG has a scan (SOS) before its frame header (SOF).");
        if (s.Scans > Limits.MaxJpegScans)
            throw new ImageRejectedException(ImageRejection.TooLarge,
                $"The JPEG has {s.Scans:N0} scans; at most {Limits.MaxJpegScans} are accepted (progressive encoders write about 10). Re-encode it.");
        if (s.ScanSamples > Limits.MaxJpegScanSamples)
            throw new ImageRejectedException(ImageRejection.TooLarge,
                $"The JPEG's {s.Scans} scans over its frame would take {s.ScanSamples:N0} sample visits to decode; at most " +
                $"{Limits.MaxJpegScanSamples:N0} are accepted. Re-encode it with fewer scans or fewer pixels.");
        if (s.Segments > Limits.MaxJpegSegments || s.HuffmanSegments > Limits.MaxJpegHuffmanSegments
            || s.QuantizationSegments > Limits.MaxJpegQuantizationSegments)
            throw new ImageRejectedException(ImageRejection.Undecodable,
                $"The JPEG has {s.Segments:N0} marker segments ({s.HuffmanSegments:N0} Huffman and {s.QuantizationSegments:N0} " +
                $"quantization tables); at most {Limits.MaxJpegSegments}, {Limits.MaxJpegHuffmanSegments} and " +
                $"{Limits.MaxJpegQuantizationSegments} are accepted.");
    }

    /// <summary>Refuses lossless WebP bitstreams that ask for more Huffman groups than their image could use (issue #20).</summary>
    void CheckWebpStructure(ReadOnlySpan<byte> bytes)
    {
        List<WebpLosslessHeader> streams;
        try
        {
            streams = WebpStructure.Read(bytes, Limits.MaxPixels);
        }
        catch (WebpStructure.MalformedException e)
        {
            throw new ImageRejectedException(ImageRejection.Undecodable, $"The WebP image is malformed: {e.Message}", e);
        }
        foreach (var s in streams)
            if (s.Groups > s.Tiles || s.Groups > Limits.MaxWebpHuffmanGroups)
                throw new ImageRejectedException(ImageRejection.TooLarge,
                    $"The lossless WebP ({s.Chunk}, {s.Width}x{s.Height}) asks for {s.Groups:N0} Huffman groups for {s.Tiles:N0} " +
                    $"entropy-image tiles; at most one a tile and {Limits.MaxWebpHuffmanGroups:N0} in all are accepted. Re-encode it.");
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
