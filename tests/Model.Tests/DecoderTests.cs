using AlexNet.Model.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace AlexNet.Model.Tests;

public class DecoderTests
{
    static byte[] Encode(Image image, string format)
    {
        using var ms = new MemoryStream();
        switch (format)
        {
            case "png": image.SaveAsPng(ms); break;
            case "jpeg": image.SaveAsJpeg(ms); break;
            case "gif": image.SaveAsGif(ms); break;
            case "webp": image.SaveAsWebp(ms); break;
            case "bmp": image.SaveAsBmp(ms); break;
            case "tiff": image.SaveAsTiff(ms); break;
        }
        return ms.ToArray();
    }

    [Theory]
    [InlineData("png")]
    [InlineData("jpeg")]
    [InlineData("gif")]
    [InlineData("webp")]
    public void AcceptedFormatsDecodeToRgbOfTheRightSize(string format)
    {
        using var image = new Image<Rgb24>(30, 20, new Rgb24(200, 30, 30));
        using var decoded = SafeImageDecoder.Default.Decode(Encode(image, format));
        Assert.Equal((30, 20), (decoded.Width, decoded.Height));
        var p = decoded[10, 10];
        Assert.InRange(p.R, 180, 220);
        Assert.InRange(p.G, 0, 60);
    }

    [Theory]
    [InlineData("bmp")]
    [InlineData("tiff")]
    public void FormatsWithUnfixedDecoderBugsAreNotRegistered(string format)
    {
        using var image = new Image<Rgb24>(8, 8);
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(Encode(image, format)));
        Assert.Equal(ImageRejection.UnsupportedFormat, e.Reason);
    }

    [Fact]
    public void RandomBytesAndEmptyInputAreRejectedWithAReason()
    {
        var junk = new byte[500];
        new Random(1).NextBytes(junk);
        Assert.Equal(ImageRejection.UnsupportedFormat, Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(junk)).Reason);
        Assert.Equal(ImageRejection.Undecodable, Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode([])).Reason);
    }

    [Fact]
    public void ATruncatedPngIsUndecodable()
    {
        using var image = new Image<Rgb24>(64, 64);
        for (var y = 0; y < 64; y++) for (var x = 0; x < 64; x++) image[x, y] = new Rgb24((byte)(x * 4), (byte)(y * 4), (byte)(x ^ y));
        var png = Encode(image, "png");
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(png[..(png.Length / 2)]));
        Assert.Equal(ImageRejection.Undecodable, e.Reason);
    }

    [Fact]
    public void APngThatDeclaresAHugeCanvasIsRefusedBeforeDecoding()
    {
        using var image = new Image<Rgb24>(1, 1);
        var png = Encode(image, "png");
        // IHDR width and height are big-endian at bytes 16..23, its CRC (over type and data) at 29..32.
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(16), 100_000);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(png.AsSpan(20), 100_000);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(29), Crc32(png.AsSpan(12, 17)));
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(png));
        Assert.Equal(ImageRejection.TooLarge, e.Reason);
        Assert.Contains("100000x100000", e.Message);
    }

    [Fact]
    public void PixelBudgetIsEnforced()
    {
        using var image = new Image<Rgb24>(300, 200);
        var decoder = new SafeImageDecoder(new DecoderLimits { MaxPixels = 50_000 });
        var e = Assert.Throws<ImageRejectedException>(() => decoder.Decode(Encode(image, "png")));
        Assert.Equal(ImageRejection.TooLarge, e.Reason);
        Assert.Contains("300x200", e.Message);
    }

    [Fact]
    public void TransparentPixelsBecomeWhiteNotWhateverWasHidden()
    {
        using var image = new Image<Rgba32>(4, 4, new Rgba32(10, 200, 10, 0));   // green, fully transparent
        using var decoded = SafeImageDecoder.Default.Decode(Encode(image, "png"));
        Assert.Equal(new Rgb24(255, 255, 255), decoded[1, 1]);
    }

    [Fact]
    public void JpegsDecodeStraightToRgbWithTheSamePixelsAsTheRgbaPath()
    {
        // The JPEG fast path skips the RGBA decode and the blend onto white; the pixels must be those of that path.
        using var source = new Image<Rgb24>(97, 61);
        for (var y = 0; y < source.Height; y++)
            for (var x = 0; x < source.Width; x++)
                source[x, y] = new Rgb24((byte)(x * 5 + y), (byte)(y * 7 ^ x), (byte)((x * y) % 251));
        var jpeg = Encode(source, "jpeg");
        using var reference = Image.Load<Rgba32>(jpeg);
        reference.Mutate(x => x.BackgroundColor(Color.White));
        using var expected = reference.CloneAs<Rgb24>();
        using var decoded = SafeImageDecoder.Default.Decode(jpeg);
        Assert.Equal((expected.Width, expected.Height), (decoded.Width, decoded.Height));
        var (a, b) = (new byte[97 * 61 * 3], new byte[97 * 61 * 3]);
        expected.CopyPixelDataTo(a);
        decoded.CopyPixelDataTo(b);
        Assert.Equal(a, b);
    }

    [Fact]
    public void ExifOrientationIsApplied()
    {
        using var image = new Image<Rgb24>(40, 10, new Rgb24(0, 0, 0));
        image.Metadata.ExifProfile = new ExifProfile();
        image.Metadata.ExifProfile.SetValue(ExifTag.Orientation, (ushort)6);   // rotate 90 degrees clockwise to display
        using var decoded = SafeImageDecoder.Default.Decode(Encode(image, "jpeg"));
        Assert.Equal((10, 40), (decoded.Width, decoded.Height));
    }

    [Fact]
    public void OnlyTheFirstGifFrameIsDecoded()
    {
        using var image = new Image<Rgba32>(16, 16, new Rgba32(255, 0, 0, 255));
        for (var i = 0; i < 5; i++) image.Frames.AddFrame(new Image<Rgba32>(16, 16, new Rgba32(0, 0, 255, 255)).Frames.RootFrame);
        using var decoded = SafeImageDecoder.Default.Decode(Encode(image, "gif"));
        Assert.True(decoded[8, 8].R > 200 && decoded[8, 8].B < 50);
        Assert.Equal(1, decoded.Frames.Count);
    }

    static uint Crc32(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
        return ~crc;
    }
}
