using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Training.Tests;

/// <summary>Small data sets made in code.</summary>
public static class Fixtures
{
    /// <summary>A compact model with Fashion-MNIST's labels, written by the project's own graph writer, seeded He-normal weights.</summary>
    public static string CompactModel(string path, int seed)
    {
        var spec = AlexNetSpec.Compact(10);
        var metadata = new AlexNet.Model.Onnx.ModelMetadata(LabelSet.FashionMnist.Names, null, new Provenance { Dataset = "generated" });
        AlexNetOnnxGraph.Build(spec, AlexNetOnnxGraph.RandomWeights(spec, seed), new Normalization([70f, 70f, 70f], [80f, 80f, 80f]), metadata)
            .Save(path);
        return path;
    }

    /// <summary>
    /// root/{train,val}/{class}/*.png: class i is a noisy image tinted by a class colour, so a net can learn it.
    /// Adds one file of random bytes named .jpg to train/ of the first class.
    /// </summary>
    public static string ImageFolder(string root, string[] classes, int trainPerClass, int valPerClass, int seed = 1, int size = 40)
    {
        var rng = new Random(seed);
        var tints = new[] { new Rgb24(220, 40, 40), new Rgb24(40, 200, 60), new Rgb24(40, 60, 220), new Rgb24(200, 200, 40) };
        foreach (var (split, count) in new[] { ("train", trainPerClass), ("val", valPerClass) })
            for (var c = 0; c < classes.Length; c++)
            {
                var dir = Directory.CreateDirectory(Path.Combine(root, split, classes[c])).FullName;
                for (var i = 0; i < count; i++)
                {
                    using var image = new Image<Rgb24>(size + rng.Next(8), size);
                    var t = tints[c % tints.Length];
                    for (var y = 0; y < image.Height; y++)
                        for (var x = 0; x < image.Width; x++)
                        {
                            var n = rng.Next(-60, 60);
                            // class 0 also gets a bright diagonal, so shape matters as well as colour
                            var line = c == 0 && Math.Abs(x - y) < 3 ? 80 : 0;
                            image[x, y] = new Rgb24(Clamp(t.R + n + line), Clamp(t.G + n + line), Clamp(t.B + n + line));
                        }
                    image.SaveAsPng(Path.Combine(dir, $"{i:D3}.png"));
                }
            }
        var junk = new byte[300];
        rng.NextBytes(junk);
        File.WriteAllBytes(Path.Combine(root, "train", classes[0], "broken.jpg"), junk);
        return root;
    }

    static byte Clamp(int v) => (byte)Math.Clamp(v, 0, 255);

    /// <summary>Gzipped IDX files in the Fashion-MNIST layout; image i has every pixel = (i * 10 + label) % 256.</summary>
    public static string Idx(string dir, int count, string prefix = "train")
    {
        Directory.CreateDirectory(dir);
        var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray();
        var pixels = new byte[count * 28 * 28];
        for (var i = 0; i < count; i++) pixels.AsSpan(i * 784, 784).Fill((byte)((i * 10 + labels[i]) % 256));
        var tag = prefix == "train" ? "train" : "t10k";
        IdxFile.Write(Path.Combine(dir, $"{tag}-images-idx3-ubyte.gz"), 2051, [count, 28, 28], pixels);
        IdxFile.Write(Path.Combine(dir, $"{tag}-labels-idx1-ubyte.gz"), 2049, [count], labels);
        return dir;
    }
}
