using AlexNet.Model.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Model.Tests;

public class PreprocessingTests
{
    [Fact]
    public void ShorterSideGoesTo256AndTheCentralSquareIsKept()
    {
        // A 512x256 image: left quarter red, middle half green, right quarter blue. The central 256 square is green.
        using var image = new Image<Rgb24>(512, 256);
        for (var y = 0; y < 256; y++)
            for (var x = 0; x < 512; x++)
                image[x, y] = x < 128 ? new Rgb24(255, 0, 0) : x < 384 ? new Rgb24(0, 255, 0) : new Rgb24(0, 0, 255);
        var prep = new ImagePreprocessor(AlexNetSpec.Paper());
        var prepared = prep.Prepare(image);
        Assert.Equal(256, prepared.Size);
        Assert.Equal(256 * 256 * 3, prepared.Rgb.Length);
        Assert.True(prepared.Rgb.Chunk(3).All(p => p[0] < 10 && p[1] > 245 && p[2] < 10), "only the green centre remains");
    }

    [Fact]
    public void CropsAreChwFloatsInPixelUnitsAndFlipsMirrorRows()
    {
        var rgb = new byte[8 * 8 * 3];
        for (var y = 0; y < 8; y++) for (var x = 0; x < 8; x++) { var i = (y * 8 + x) * 3; rgb[i] = (byte)x; rgb[i + 1] = (byte)y; rgb[i + 2] = 100; }
        var prep = new ImagePreprocessor(8, 4);
        var image = new PreparedImage(rgb, 8);
        var chw = new float[prep.CropLength];
        prep.WriteCrop(image, new CropWindow(3, 2, false), chw);
        Assert.Equal([3f, 4f, 5f, 6f], chw[..4]);          // R plane, first row: x = 3..6
        Assert.Equal(2f, chw[16]);                          // G plane starts with y = 2
        Assert.Equal(100f, chw[32]);                        // B plane
        prep.WriteCrop(image, new CropWindow(3, 2, true), chw);
        Assert.Equal([6f, 5f, 4f, 3f], chw[..4]);
        Assert.Throws<ArgumentOutOfRangeException>(() => prep.WriteCrop(image, new CropWindow(5, 0, false), chw));
        Assert.Equal(new CropWindow(2, 2, false), prep.Center);
    }
}
