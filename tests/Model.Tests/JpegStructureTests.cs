using static AlexNet.Tests.Shared.HostileFiles;
using System.Diagnostics;
using AlexNet.Model.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Model.Tests;

/// <summary>The JPEG marker pre-scan (issue #20): scan bombs are refused before ImageSharp walks their frame, and real
/// progressive files (libjpeg-turbo's cjpeg and PIL, Fixtures/README.md) still decode.</summary>
public class JpegStructureTests
{
    static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));

    /// <summary>Runs the decode on the thread pool and gives up waiting after <paramref name="wait"/>: today's code could
    /// not be stopped, so a test must not wait for it. The clock runs inside the task, from the call to its end, so
    /// time spent waiting for a pool thread on a busy machine is not counted.</summary>
    internal static (Exception? Error, TimeSpan Elapsed) TimedDecode(SafeImageDecoder decoder, byte[] bytes, TimeSpan wait,
        CancellationToken ct = default)
    {
        // Warm up first (JIT and ImageSharp's first use take a few hundred ms on a loaded machine): the clock is for the refusal.
        using (var warm = new Image<Rgb24>(8, 8))
        using (var ms = new MemoryStream())
        {
            warm.SaveAsJpeg(ms);
            SafeImageDecoder.Default.Decode(ms.ToArray()).Dispose();
        }
        var elapsed = TimeSpan.Zero;
        var work = Task.Run(() =>
        {
            var clock = Stopwatch.StartNew();
            try
            {
                using var image = decoder.Decode(bytes, ct);
            }
            finally
            {
                elapsed = clock.Elapsed;
            }
        });
        var finished = Task.WhenAny(work, Task.Delay(wait)).GetAwaiter().GetResult() == work;
        Assert.True(finished, $"the decode was still running after {wait.TotalSeconds} s");
        return (work.Exception?.InnerException, elapsed);
    }

    /// <summary>"Quickly": the refusal itself is well under a millisecond of work; the bound leaves room for a machine
    /// whose two cores are shared with builds (load 16 while these tests were written).</summary>
    internal static readonly TimeSpan Quickly = TimeSpan.FromSeconds(1);

    [Fact]
    public void AThousandEmptyScansOverALargeFrameAreRefusedQuickly()
    {
        var bomb = ScanBomb(1000, 8192, 4882);   // 10 KB; 40 s of decoding in 2.1.13 unchecked
        var (error, elapsed) = TimedDecode(SafeImageDecoder.Default, bomb, TimeSpan.FromSeconds(10));
        var e = Assert.IsType<ImageRejectedException>(error);
        Assert.Equal(ImageRejection.TooLarge, e.Reason);
        Assert.Contains("1,000 scans", e.Message);
        Assert.True(elapsed < Quickly, $"refused after {elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public void ALargeFrameGetsFewerScansThanASmallOne()
    {
        // 30 scans is under the scan cap, but over 8192x4882 it is 1.2 G sample visits: over the work budget.
        var (error, elapsed) = TimedDecode(SafeImageDecoder.Default, ScanBomb(30, 8192, 4882), TimeSpan.FromSeconds(10));
        var e = Assert.IsType<ImageRejectedException>(error);
        Assert.Equal(ImageRejection.TooLarge, e.Reason);
        Assert.Contains("sample visits", e.Message);
        Assert.True(elapsed < Quickly, $"refused after {elapsed.TotalMilliseconds:F0} ms");

        using var small = SafeImageDecoder.Default.Decode(ScanBomb(30, 640, 480));   // the same 30 scans over 0.3 Mpx
        Assert.Equal((640, 480), (small.Width, small.Height));
    }

    [Fact]
    public void MoreScansThanTheCapAreRefusedEvenOverATinyFrame()
    {
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(ScanBomb(33, 16, 16)));
        Assert.Equal(ImageRejection.TooLarge, e.Reason);
        Assert.Contains("33 scans", e.Message);
        using var ok = SafeImageDecoder.Default.Decode(ScanBomb(32, 16, 16));
    }

    [Theory]
    [InlineData("china-progressive.jpg", 10, 320, 214)]       // cjpeg -progressive (libjpeg-turbo 2.1.5), 4:2:0
    [InlineData("flower-progressive-444.jpg", 10, 240, 160)]  // PIL 9.4 progressive=True, subsampling=0
    [InlineData("china-gray-progressive.jpg", 6, 320, 214)]   // cjpeg -progressive -grayscale
    public void RealProgressiveJpegsDecodeAndTheirScriptsFitTheBudgetAtFullSize(string name, int scans, int width, int height)
    {
        var bytes = Fixture(name);
        var s = JpegStructure.Read(bytes);
        Assert.Equal((1, scans), (s.Frames, s.Scans));
        // The same script over the largest frame the pixel budget allows must stay inside the work budget.
        var limits = new DecoderLimits();
        var samplesPerPixel = (double)s.ScanSamples / (width * height);
        Assert.InRange(samplesPerPixel * limits.MaxPixels, 0, limits.MaxJpegScanSamples);

        using var decoded = SafeImageDecoder.Default.Decode(bytes);
        using var reference = Image.Load<Rgb24>(bytes);   // ImageSharp's defaults: the same pixels
        Assert.Equal((width, height), (decoded.Width, decoded.Height));
        var (a, b) = (new byte[width * height * 3], new byte[width * height * 3]);
        reference.CopyPixelDataTo(a);
        decoded.CopyPixelDataTo(b);
        Assert.Equal(a, b);
    }

    [Fact]
    public void StuffedBytesAndRestartMarkersDoNotEndAScan()
    {
        // SOI, SOF0 16x16 one component, SOS, entropy data with FF00 (a stuffed FF followed by the byte DA), RST3,
        // fill bytes, then EOI. A reader that took FF00 DA or FFD3 for markers would count more scans or stop early.
        byte[] jpeg =
        [
            0xFF, 0xD8,
            0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0,
            0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0,
            0x12, 0xFF, 0x00, 0xDA, 0x00, 0x08, 0xFF, 0xD3, 0x56, 0xFF, 0x00, 0xFF, 0xFF, 0xFF,
            0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0, 0x42,
            0xFF, 0xD9,
            0xFF, 0xDA, 0, 8, 1, 1, 0x00, 0, 63, 0,   // after EOI: the decoder never reads it
        ];
        var s = JpegStructure.Read(jpeg);
        Assert.Equal((1, 2, 2 * 4 * 64L), (s.Frames, s.Scans, s.ScanSamples));
    }

    [Fact]
    public void EncodedBaselineJpegsHaveOneFrameAndOneScan()
    {
        using var noise = new Image<Rgb24>(200, 150);
        var random = new Random(7);
        noise.ProcessPixelRows(rows =>
        {
            for (var y = 0; y < rows.Height; y++) random.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.GetRowSpan(y)));
        });
        using var ms = new MemoryStream();
        noise.SaveAsJpeg(ms);   // noise: plenty of 0xFF00 in the entropy-coded data
        var s = JpegStructure.Read(ms.ToArray());
        Assert.Equal((1, 1), (s.Frames, s.Scans));
        Assert.False(s.ScanBeforeFrame);
    }

    [Fact]
    public void ASecondFrameHeaderAndHuffmanTableFloodsAreRefused()
    {
        using var image = new Image<Rgb24>(16, 16, new Rgb24(10, 20, 30));
        using var ms = new MemoryStream();
        image.SaveAsJpeg(ms);
        var jpeg = ms.ToArray();
        var sof = Segment(jpeg, 0xC0);
        var dht = Segment(jpeg, 0xC4);

        byte[] twoFrames = [.. jpeg[..2], .. sof, .. jpeg[2..]];
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(twoFrames));
        Assert.Contains("2 frame headers", e.Message);

        byte[] flood = [.. jpeg[..2], .. Enumerable.Repeat(dht, 200).SelectMany(x => x), .. jpeg[2..]];
        e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(flood));
        Assert.Equal(ImageRejection.Undecodable, e.Reason);
        Assert.Contains("Huffman", e.Message);
    }

    /// <summary>The first marker segment of type <paramref name="marker"/> (0xFF, marker, length, payload).</summary>
    static byte[] Segment(byte[] jpeg, byte marker)
    {
        for (var p = 2; p + 4 <= jpeg.Length;)
        {
            var length = (jpeg[p + 2] << 8) | jpeg[p + 3];
            if (jpeg[p + 1] == marker) return jpeg[p..(p + 2 + length)];
            p += 2 + length;
        }
        throw new InvalidOperationException($"no 0xFF{marker:X2} segment");
    }
}
