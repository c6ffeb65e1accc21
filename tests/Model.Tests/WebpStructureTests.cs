using static AlexNet.Tests.Shared.HostileFiles;
using System.Diagnostics;
using AlexNet.Model.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Model.Tests;

/// <summary>The lossless-WebP Huffman-group check (issue #20): group bombs are refused before ImageSharp allocates
/// their tables, and real lossless files (libwebp via PIL and cwebp, ImageSharp's encoder) still decode.</summary>
public class WebpStructureTests
{
    static byte[] Fixture(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", name));


    [Fact]
    public void SixtyFiveThousandGroupsForSixteenTilesAreRefusedWithoutTheirMemory()
    {
        var bomb = GroupBomb(16, 65_535);   // 160 KB; 1.5 GB of managed tables in 2.1.13 unchecked
        Assert.InRange(bomb.Length, 150_000, 170_000);
        SafeImageDecoder.Default.Decode(GroupBomb(16, 0)).Dispose();   // warm up
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(bomb));
        var elapsed = clock.Elapsed;
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.Equal(ImageRejection.TooLarge, e.Reason);
        Assert.Contains("65,536 Huffman groups for 16", e.Message);
        // The file is well formed: the parse reads all 65,536 groups' codes without losing step.
        Assert.Equal(65_536, Assert.Single(WebpStructure.Read(bomb, readGroupCodes: true)).Groups);
        Assert.True(elapsed < JpegStructureTests.Quickly, $"refused after {elapsed.TotalMilliseconds:F0} ms");
        Assert.True(allocated < 16 << 20, $"{allocated:N0} bytes allocated to refuse it");
    }

    [Fact]
    public void AGroupBombInALosslessAlphaChunkIsRefusedToo()
    {
        // A lossy 16x16 WebP from ImageSharp, rewrapped as VP8X + ALPH (compression 1: a VP8L stream without its
        // header) + VP8. ImageSharp decodes the alpha plane with the same lossless decoder.
        using var image = new Image<Rgb24>(16, 16, new Rgb24(90, 120, 30));
        using var ms = new MemoryStream();
        image.SaveAsWebp(ms, new WebpEncoder { FileFormat = WebpFileFormatType.Lossy });
        var lossy = ms.ToArray();
        Assert.Equal("VP8 "u8.ToArray(), lossy[12..16]);
        byte[] vp8x = [0x10, 0, 0, 0, 15, 0, 0, 15, 0, 0];   // alpha flag, canvas 16x16
        byte[] alph = [0x01, .. GroupBombStream(new BitWriter(), 65_535)];
        byte[] body = [.. "WEBP"u8, .. Chunk("VP8X", vp8x), .. Chunk("ALPH", alph), .. lossy[12..]];
        byte[] webp = [.. "RIFF"u8, .. BitConverter.GetBytes(body.Length), .. body];

        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(webp));
        Assert.Equal(ImageRejection.TooLarge, e.Reason);
        Assert.Contains("ALPH", e.Message);
        Assert.Contains("65,536 Huffman groups", e.Message);
    }

    /// <summary>VP8X (canvas 16x16, <paramref name="vp8xSize"/> as its declared size), the given chunks, then ImageSharp's
    /// own lossy 16x16 VP8 chunk; the RIFF size is right unless <paramref name="riffSize"/> says otherwise.</summary>
    static byte[] Extended(IEnumerable<byte[]> chunks, uint vp8xSize = 10, int? riffSize = null, byte[]? after = null)
    {
        using var image = new Image<Rgb24>(16, 16, new Rgb24(90, 120, 30));
        using var ms = new MemoryStream();
        image.SaveAsWebp(ms, new WebpEncoder { FileFormat = WebpFileFormatType.Lossy });
        var vp8 = ms.ToArray()[12..];
        byte flags = after is null && !chunks.Any() ? (byte)0 : (byte)0x10;   // the alpha flag, when an ALPH chunk may follow
        byte[] body = [.. "WEBP"u8, .. "VP8X"u8, .. BitConverter.GetBytes(vp8xSize), flags, 0, 0, 0, 15, 0, 0, 15, 0, 0,
            .. chunks.SelectMany(c => c), .. vp8];
        return [.. "RIFF"u8, .. BitConverter.GetBytes(riffSize ?? body.Length), .. body, .. after ?? []];
    }

    [Theory]
    [InlineData("ICCP")]
    [InlineData("EXIF")]
    [InlineData("XMP ")]
    public void AMetadataChunkThatDeclaresAGigabyteIsRefusedBeforeImageSharpAllocatesIt(string fourcc)
    {
        // Found while fuzzing this change: ImageSharp's Identify allocates a managed array of the declared size
        // (1 GB and 3.5 s for a 1 GB ICCP chunk in a ~200-byte file).
        byte[] chunk = [.. System.Text.Encoding.ASCII.GetBytes(fourcc), .. BitConverter.GetBytes(1u << 30), .. new byte[64]];
        var webp = Extended([chunk]);
        SafeImageDecoder.Default.Decode(Extended([])).Dispose();   // warm up; the well-formed file decodes
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(webp));
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.Equal(ImageRejection.Undecodable, e.Reason);
        Assert.Contains($"{fourcc} chunk declares 1,073,741,824 bytes", e.Message);
        Assert.True(allocated < 16 << 20, $"{allocated:N0} bytes allocated to refuse it");
    }

    [Fact]
    public void AnAlphaBombCannotHideWhereOnlyImageSharpLooks()
    {
        var bomb = Chunk("ALPH", [0x01, .. GroupBombStream(new BitWriter(), 65_535)]);
        // ImageSharp reads 10 bytes of VP8X whatever its size says: a VP8X that claims to hold the ALPH chunk.
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(Extended([bomb], vp8xSize: 10 + (uint)bomb.Length)));
        Assert.Contains("VP8X chunk is not 10 bytes", e.Message);
        // ImageSharp walks to the end of the bytes, not of the RIFF size: an ALPH chunk after the RIFF's end.
        var webp = Extended([], after: bomb);
        e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(webp));
        Assert.Contains("65,536 Huffman groups", e.Message);
    }

    [Fact]
    public void ACanvasThatDiffersFromTheImageIsStillDecodedAtTheImagesSize()
    {
        // libwebp refuses it; ImageSharp decodes the image chunk's size, and the service's HostileInputTests expect 200.
        using var image = new Image<Rgb24>(8, 8, new Rgb24(10, 200, 10));
        using var ms = new MemoryStream();
        image.SaveAsWebp(ms, new WebpEncoder { FileFormat = WebpFileFormatType.Lossless });
        var vp8l = ms.ToArray()[12..];
        byte[] vp8x = [0, 0, 0, 0, 0xFF, 0x3F, 0, 0xFF, 0x3F, 0];   // canvas 16,384 x 16,384
        byte[] body = [.. "WEBP"u8, .. Chunk("VP8X", vp8x), .. vp8l];
        using var decoded = SafeImageDecoder.Default.Decode([.. "RIFF"u8, .. BitConverter.GetBytes(body.Length), .. body]);
        Assert.Equal((8, 8), (decoded.Width, decoded.Height));
    }

    static byte[] Chunk(string fourcc, byte[] payload) =>
        [.. System.Text.Encoding.ASCII.GetBytes(fourcc), .. BitConverter.GetBytes(payload.Length), .. payload, .. new byte[payload.Length & 1]];

    [Fact]
    public void MoreGroupsThanTheCapAreRefusedEvenWhenThereAreEnoughTiles()
    {
        // 256x256 at prefix bits 2 has 4,096 tiles; 2,601 groups is one over the cap.
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(GroupBomb(256, 2600)));
        Assert.Equal(ImageRejection.TooLarge, e.Reason);
        Assert.Contains("2,601 Huffman groups", e.Message);
        using var ok = SafeImageDecoder.Default.Decode(GroupBomb(256, 2599));
        Assert.Equal(256, ok.Width);
    }

    [Theory]
    [InlineData("china-pil-lossless.webp", 160, 107)]   // PIL 9.4 lossless=True (libwebp 1.2.4)
    [InlineData("china-cwebp-lossless.webp", 160, 107)] // cwebp -lossless -z 9
    [InlineData("flower-cwebp-lossless-z9.webp", 240, 160)]   // cwebp -lossless -z 9: predictor transform, 8 groups
    [InlineData("flower-lossy-alpha.webp", 120, 80)]    // lossy VP8 with a lossless ALPH chunk
    public void RealLosslessWebpsParseAndDecodeAsBefore(string name, int width, int height)
    {
        var bytes = Fixture(name);
        var s = Assert.Single(WebpStructure.Read(bytes, readGroupCodes: true));
        Assert.Equal((width, height), (s.Width, s.Height));
        Assert.InRange(s.Groups, 1, s.Tiles);

        using var decoded = SafeImageDecoder.Default.Decode(bytes);
        using var reference = Image.Load<Rgba32>(bytes);   // ImageSharp's defaults
        Assert.Equal((width, height), (decoded.Width, decoded.Height));
        Assert.Equal(Flatten(reference), decoded[width / 2, height / 2]);
    }

    static Rgb24 Flatten(Image<Rgba32> image)
    {
        var p = image[image.Width / 2, image.Height / 2];
        int Over(byte c) => (c * p.A + 255 * (255 - p.A) + 127) / 255;
        return new Rgb24((byte)Over(p.R), (byte)Over(p.G), (byte)Over(p.B));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(37, 23)]
    [InlineData(300, 200)]
    [InlineData(640, 8)]
    public void ImageSharpsLosslessOutputParsesWithTheGroupsItUses(int width, int height)
    {
        // Noise, gradients and a few flat colours, so the encoder picks transforms, a colour cache and several groups.
        var random = new Random(width * 1000 + height);
        foreach (var kind in new[] { "noise", "gradient", "palette" })
        {
            using var image = new Image<Rgba32>(width, height);
            for (var y = 0; y < height; y++)
                for (var x = 0; x < width; x++)
                    image[x, y] = kind switch
                    {
                        "noise" => new Rgba32((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256), (byte)(x < width / 2 ? 255 : random.Next(256))),
                        "gradient" => new Rgba32((byte)(x * 255 / width), (byte)(y * 255 / height), (byte)((x + y) & 255), 255),
                        _ => new Rgba32((byte)(x / 16 * 40), (byte)(y / 16 * 60), 0, 255),
                    };
            using var ms = new MemoryStream();
            image.SaveAsWebp(ms, new WebpEncoder { FileFormat = WebpFileFormatType.Lossless });
            var bytes = ms.ToArray();
            var s = Assert.Single(WebpStructure.Read(bytes, readGroupCodes: true));
            Assert.InRange(s.Groups, 1, s.Tiles);
            using var decoded = SafeImageDecoder.Default.Decode(bytes);
            Assert.Equal((width, height), (decoded.Width, decoded.Height));
        }
    }

    [Fact]
    public void TruncatedOrMalformedLosslessHeadersAreUndecodable()
    {
        var bomb = GroupBomb(16, 3);
        // Cut inside the entropy image's prefix codes (RIFF header 20 bytes, VP8L header 5, then the entropy image).
        var cut = bomb[..27];
        var e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(Riff("VP8L", cut[20..])));
        Assert.Equal(ImageRejection.Undecodable, e.Reason);

        // A normal code whose code-length code has lengths 1 and 2 only (Kraft sum 3/4) is incomplete: libwebp refuses it.
        var incomplete = new BitWriter()
            .Bits(0x2F, 8).Bits(15, 14).Bits(15, 14).Bits(0, 1).Bits(0, 3)
            .Bits(0, 1).Bits(0, 1).Bits(1, 1).Bits(0, 3)
            .Bits(0, 1)
            .Bits(0, 1).Bits(0, 4).Bits(1, 3).Bits(2, 3).Bits(0, 3).Bits(0, 3)   // normal code: lengths of 17, 18, 0, 1 = 1, 2, 0, 0
            .Bits(0, 64).ToArray();
        e = Assert.Throws<ImageRejectedException>(() => SafeImageDecoder.Default.Decode(Riff("VP8L", incomplete)));
        Assert.Equal(ImageRejection.Undecodable, e.Reason);
        Assert.Contains("prefix code", e.Message);
    }
}
