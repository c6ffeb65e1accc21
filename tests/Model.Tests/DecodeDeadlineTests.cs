using AlexNet.Tests.Shared;
using AlexNet.Model.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Model.Tests;

/// <summary>The decode deadline (issue #20): it really stops ImageSharp's JPEG decoder, and a caller's own cancellation
/// stays an <see cref="OperationCanceledException"/>, not a rejected image.</summary>
public class DecodeDeadlineTests
{
    // The structural limits off, so only the deadline stands between the scan bomb and 40 s of decoding.
    static readonly DecoderLimits NoStructureLimits = new()
    {
        MaxJpegScans = int.MaxValue, MaxJpegScanSamples = long.MaxValue, DecodeTimeout = TimeSpan.FromMilliseconds(300),
    };

    [Fact]
    public void TheDeadlineStopsAJpegDecodeInsideImageSharp()
    {
        var decoder = new SafeImageDecoder(NoStructureLimits);
        var (error, elapsed) = JpegStructureTests.TimedDecode(decoder, HostileFiles.ScanBomb(1000, 8192, 4882), TimeSpan.FromSeconds(10));
        var e = Assert.IsType<ImageRejectedException>(error);
        Assert.Equal(ImageRejection.TooLarge, e.Reason);
        Assert.Contains("longer than the 0.3 s allowed", e.Message);
        Assert.True(elapsed < TimeSpan.FromSeconds(2), $"stopped after {elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public void TheCallersCancellationIsNotARejection()
    {
        var decoder = new SafeImageDecoder(NoStructureLimits with { DecodeTimeout = TimeSpan.FromSeconds(30) });
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        var (error, elapsed) = JpegStructureTests.TimedDecode(decoder, HostileFiles.ScanBomb(1000, 8192, 4882),
            TimeSpan.FromSeconds(10), cts.Token);
        Assert.IsAssignableFrom<OperationCanceledException>(error);
        Assert.True(elapsed < TimeSpan.FromSeconds(2), $"stopped after {elapsed.TotalMilliseconds:F0} ms");

        using var png = new MemoryStream();
        new Image<Rgb24>(4, 4).SaveAsPng(png);
        Assert.ThrowsAny<OperationCanceledException>(() => SafeImageDecoder.Default.Decode(png.ToArray(), new CancellationToken(true)));
    }

    [Fact]
    public void AnInfiniteDeadlineIsAllowed()
    {
        var decoder = new SafeImageDecoder(new DecoderLimits { DecodeTimeout = Timeout.InfiniteTimeSpan });
        using var image = decoder.Decode(HostileFiles.ScanBomb(10, 64, 64));
        Assert.Equal(64, image.Width);
    }
}
