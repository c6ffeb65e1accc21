using AlexNet.Model.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace AlexNet.Model.Tests;

/// <summary>
/// <see cref="ImagePreprocessor.Prepare"/> resizes onto the crop's canvas in one pass; its bytes must equal the
/// paper's two steps (resize the shorter side, then cut the central square), which it replaced.
/// </summary>
public class PreparedEqualsResizeThenCropTests
{
    static byte[] TwoSteps(Image<Rgb24> image, int size)
    {
        var scale = (double)size / Math.Min(image.Width, image.Height);
        var (rw, rh) = (Math.Max(size, (int)Math.Round(image.Width * scale)), Math.Max(size, (int)Math.Round(image.Height * scale)));
        using var resized = image.Clone(x => x
            .Resize(new ResizeOptions { Size = new Size(rw, rh), Sampler = KnownResamplers.Triangle, Mode = ResizeMode.Stretch })
            .Crop(new Rectangle((rw - size) / 2, (rh - size) / 2, size, size)));
        var rgb = new byte[size * size * 3];
        resized.CopyPixelDataTo(rgb);
        return rgb;
    }

    [Theory]
    [InlineData(640, 427, 256)]
    [InlineData(427, 640, 256)]
    [InlineData(256, 256, 256)]
    [InlineData(257, 1000, 256)]
    [InlineData(1001, 999, 256)]
    [InlineData(90, 72, 256)]
    [InlineData(200, 90, 64)]
    [InlineData(28, 28, 64)]
    [InlineData(1500, 1000, 64)]
    public void OnePassEqualsResizeThenCrop(int width, int height, int size)
    {
        var rng = new Random(width * 7919 + height);
        var pixels = new byte[width * height * 3];
        rng.NextBytes(pixels);
        using var image = Image.LoadPixelData<Rgb24>(pixels, width, height);
        Assert.Equal(TwoSteps(image, size), new ImagePreprocessor(size, size * 7 / 8).Prepare(image).Rgb);
    }
}
