using System.IO.Compression;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Tests.Shared;

/// <summary>
/// Fashion-MNIST test images as PNG files, read from Debian's <c>dataset-fashion-mnist</c> (test.sh installs it), and the
/// real photos bundled with the repository (sklearn's china.jpg and flower.jpg, tests/Model.Tests/Fixtures): in-domain
/// and out-of-domain uploads for the demo model.
/// </summary>
public static class FashionMnistSamples
{
    public const string Folder = "/usr/share/datasets/fashion-mnist";

    /// <summary>Test image <paramref name="index"/> (0-based) as a 28x28 grey PNG, and its label.</summary>
    public static (byte[] Png, int Label) Test(int index)
    {
        var images = Path.Combine(Folder, "t10k-images-idx3-ubyte.gz");
        if (!File.Exists(images))
            throw new FileNotFoundException($"{images} is missing: install Debian's dataset-fashion-mnist (test.sh does).", images);
        var pixels = Read(images, 16 + index * 784, 784);
        var label = Read(Path.Combine(Folder, "t10k-labels-idx1-ubyte.gz"), 8 + index, 1)[0];
        using var image = new Image<L8>(28, 28);
        for (var y = 0; y < 28; y++)
            for (var x = 0; x < 28; x++) image[x, y] = new L8(pixels[y * 28 + x]);
        using var png = new MemoryStream();
        image.SaveAsPng(png);
        return (png.ToArray(), label);
    }

    /// <summary>A photo that ships with the repository (tests/Model.Tests/Fixtures).</summary>
    public static byte[] Photo(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AlexNet.sln")))
                return File.ReadAllBytes(Path.Combine(dir.FullName, "tests", "Model.Tests", "Fixtures", name));
        throw new DirectoryNotFoundException("No AlexNet.sln above the test's folder.");
    }

    /// <summary>The repository's bundled demo model.</summary>
    public static string DemoModel()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "AlexNet.sln")))
                return Path.Combine(dir.FullName, "models", "fashion-mnist-compact.onnx");
        throw new DirectoryNotFoundException("No AlexNet.sln above the test's folder.");
    }

    static byte[] Read(string gz, int offset, int count)
    {
        using var s = new GZipStream(File.OpenRead(gz), CompressionMode.Decompress);
        var skip = new byte[81920];
        for (var left = offset; left > 0;) left -= s.Read(skip, 0, Math.Min(left, skip.Length)) is var r and > 0 ? r : throw new EndOfStreamException(gz);
        var bytes = new byte[count];
        s.ReadExactly(bytes);
        return bytes;
    }
}
