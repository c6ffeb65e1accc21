using AlexNet.Model.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace AlexNet.Model.Tests;

/// <summary>
/// <see cref="ImagePreprocessor.Prepare"/> resizes onto the crop's canvas in one pass; its bytes must equal the two
/// steps it replaced, with torchvision 0.14's geometry (issue 18): resize the shorter side to the size and the longer to
/// <c>int(size * long / short)</c>, then cut the square whose central crop starts at <c>int(round((side - crop) / 2))</c>.
/// </summary>
public class PreparedEqualsResizeThenCropTests
{
    static byte[] TwoSteps(Image<Rgb24> image, int size, int crop)
    {
        var (w, h) = (image.Width, image.Height);
        var longer = (int)((double)size * Math.Max(w, h) / Math.Min(w, h));
        var (rw, rh) = w == h ? (size, size) : w < h ? (size, longer) : (longer, size);
        int Offset(int side) => (int)Math.Round((side - crop) / 2.0, MidpointRounding.ToEven) - (size - crop) / 2;
        using var resized = image.Clone(x => x
            .Resize(new ResizeOptions { Size = new Size(rw, rh), Sampler = KnownResamplers.Triangle, Mode = ResizeMode.Stretch })
            .Crop(new Rectangle(Offset(rw), Offset(rh), size, size)));
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
    [InlineData(451, 300, 256)]
    [InlineData(300, 457, 256)]
    public void OnePassEqualsResizeThenCrop(int width, int height, int size)
    {
        var rng = new Random(width * 7919 + height);
        var pixels = new byte[width * height * 3];
        rng.NextBytes(pixels);
        using var image = Image.LoadPixelData<Rgb24>(pixels, width, height);
        Assert.Equal(TwoSteps(image, size, size * 7 / 8), new ImagePreprocessor(size, size * 7 / 8).Prepare(image).Rgb);
    }
}
