using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Tests.Shared;

/// <summary>Images made in code: a seeded gradient with coloured rectangles, so crops and images differ.</summary>
public static class TestImages
{
    public static Image<Rgb24> Make(int seed, int width = 90, int height = 72)
    {
        var rng = new Random(seed);
        var image = new Image<Rgb24>(width, height);
        var (r0, g0, b0) = (rng.Next(256), rng.Next(256), rng.Next(256));
        var (dx, dy) = (rng.NextDouble() * 3 - 1.5, rng.NextDouble() * 3 - 1.5);
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
            {
                var t = dx * x + dy * y;
                image[x, y] = new Rgb24(Clamp(r0 + t), Clamp(g0 - t), Clamp(b0 + t / 2));
            }
        for (var i = 0; i < 6; i++)
        {
            var (x0, y0) = (rng.Next(width), rng.Next(height));
            var (w, h) = (rng.Next(4, width / 2), rng.Next(4, height / 2));
            var c = new Rgb24((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256));
            for (var y = y0; y < Math.Min(height, y0 + h); y++)
                for (var x = x0; x < Math.Min(width, x0 + w); x++)
                    image[x, y] = c;
        }
        return image;
    }

    public static byte[] Png(int seed, int width = 90, int height = 72) => Encode(seed, width, height, (i, s) => i.SaveAsPng(s));

    /// <summary>A PNG of per-pixel noise: it hardly compresses (about 3 bytes a pixel).</summary>
    public static byte[] NoisyPng(int seed, int width, int height)
    {
        var rng = new Random(seed);
        var rgb = new byte[width * height * 3];
        rng.NextBytes(rgb);
        using var image = Image.LoadPixelData<Rgb24>(rgb, width, height);
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }
    public static byte[] Jpeg(int seed) => Encode(seed, 90, 72, (i, s) => i.SaveAsJpeg(s));
    public static byte[] Gif(int seed) => Encode(seed, 90, 72, (i, s) => i.SaveAsGif(s));
    public static byte[] Webp(int seed) => Encode(seed, 90, 72, (i, s) => i.SaveAsWebp(s));
    public static byte[] Bmp(int seed) => Encode(seed, 90, 72, (i, s) => i.SaveAsBmp(s));

    static byte[] Encode(int seed, int width, int height, Action<Image<Rgb24>, Stream> save)
    {
        using var image = Make(seed, width, height);
        using var ms = new MemoryStream();
        save(image, ms);
        return ms.ToArray();
    }

    static byte Clamp(double v) => (byte)Math.Clamp((int)v, 0, 255);
}
