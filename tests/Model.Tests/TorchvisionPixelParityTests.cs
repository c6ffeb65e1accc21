using AlexNet.Model.Imaging;
using AlexNet.Tests.Shared;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace AlexNet.Model.Tests;

/// <summary>
/// The central crop a served (or trained) image gets is torchvision 0.14's
/// <c>CenterCrop(224)(Resize(256)(PIL image))</c>, computed by torchvision itself (Debian's python3-torchvision), on real
/// photos (scikit-learn's china.jpg and flower.jpg, Fixtures/) cut to several aspect ratios, odd sides included. What may
/// differ is the resampling (ImageSharp's triangle filter against PIL's bilinear): a level or two.
/// </summary>
public sealed class TorchvisionPixelParityTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("alexnet-parity-").FullName;

    // (photo, crop of it: x, y, width, height): landscape and portrait, odd and even sides, the 451x300 and
    // 640x427, a square, a thin one, and one smaller than the resize size (scaled up).
    public static TheoryData<string, int, int, int, int> Shapes => new()
    {
        { "china.jpg", 0, 0, 640, 427 },
        { "china.jpg", 40, 60, 451, 300 },
        { "china.jpg", 100, 0, 300, 427 },
        { "china.jpg", 3, 5, 457, 305 },
        { "china.jpg", 0, 100, 640, 257 },
        { "flower.jpg", 0, 0, 640, 427 },
        { "flower.jpg", 150, 20, 333, 333 },
        { "flower.jpg", 200, 10, 257, 401 },
        { "flower.jpg", 10, 10, 201, 150 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void CentralCropEqualsTorchvisionsResizeAndCenterCrop(string photo, int x, int y, int width, int height)
    {
        using var source = Image.Load<Rgb24>(Path.Combine(AppContext.BaseDirectory, "Fixtures", photo));
        using var cut = source.Clone(c => c.Crop(new Rectangle(x, y, width, height)));
        var input = Path.Combine(_dir, $"in-{width}x{height}.png");
        var output = Path.Combine(_dir, $"out-{width}x{height}.png");
        cut.SaveAsPng(input, new PngEncoder());   // lossless: both sides start from the same pixels

        PyTorchFixture.Python("-c", """
            import sys
            from PIL import Image
            import torchvision.transforms as T
            T.Compose([T.Resize(256), T.CenterCrop(224)])(Image.open(sys.argv[1]).convert("RGB")).save(sys.argv[2])
            """, input, output);

        using var theirs = Image.Load<Rgb24>(output);
        Assert.Equal((224, 224), (theirs.Width, theirs.Height));
        var reference = new byte[224 * 224 * 3];
        theirs.CopyPixelDataTo(reference);

        var pre = new ImagePreprocessor(256, 224);
        using var decoded = SafeImageDecoder.Default.Decode(File.ReadAllBytes(input));
        var ours = pre.CenterCrop(pre.Prepare(decoded));   // (3, 224, 224) floats 0..255
        double sum = 0;
        var max = 0;
        for (var yy = 0; yy < 224; yy++)
            for (var xx = 0; xx < 224; xx++)
                for (var c = 0; c < 3; c++)
                {
                    var d = Math.Abs((int)ours[c * 224 * 224 + yy * 224 + xx] - reference[(yy * 224 + xx) * 3 + c]);
                    sum += d;
                    max = Math.Max(max, d);
                }
        var mean = sum / reference.Length;
        Assert.True(max <= 3 && mean < 0.5, $"{photo} {width}x{height}: max difference {max} levels, mean {mean:F2} (bounds 3 and 0.5)");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
