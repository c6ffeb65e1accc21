using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Training.Data;
using AlexNet.Training.Export;

namespace AlexNet.Training.Quantization;

/// <summary>
/// The images quantize calibrates and checks on, and compare runs: every image under a folder (searched recursively,
/// in a fixed shuffled order, so a class-folder tree is not read one class after another), Fashion-MNIST's training
/// images that train holds out for validation (as fit-ood takes them), or its 10,000 test images.
/// </summary>
public static class ImageSource
{
    static readonly string[] Extensions = [".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"];

    public static (ImageSet Images, string Name) Load(string? folder, string? fashionMnist, bool fashionTest, int holdout, int seed,
        ImagePreprocessor prep, Action<string> skipped)
    {
        if (fashionMnist is { } dir)
        {
            if (!fashionTest) return DomainFit.HeldOut(dir, null, holdout, seed, null, prep);
            var set = ImageSet.FromIdx(Path.Combine(dir, "t10k-images-idx3-ubyte.gz"), Path.Combine(dir, "t10k-labels-idx1-ubyte.gz"), prep, LabelSet.FashionMnist);
            return (set, $"Fashion-MNIST test images ({set.Count})");
        }
        if (folder is null) throw new ArgumentException("Name the images: an image folder, or --fashion-mnist <folder>.");
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Image folder '{folder}' does not exist.");
        var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .Order(StringComparer.Ordinal).ToArray();
        var order = ImageSet.SplitOrder(files.Length, seed);
        files = [.. order.Select(i => files[i])];
        var decoded = new PreparedImage?[files.Length];
        Parallel.For(0, files.Length, i =>
        {
            try
            {
                using var image = SafeImageDecoder.Default.Decode(File.ReadAllBytes(files[i]));
                decoded[i] = prep.Prepare(image);
            }
            catch (Exception e) when (e is ImageRejectedException or IOException or UnauthorizedAccessException)
            {
                lock (skipped) skipped($"skipped {files[i]}: {e.Message}");
            }
        });
        var kept = decoded.OfType<PreparedImage>().ToArray();
        if (kept.Length == 0) throw new InvalidDataException($"No readable images under '{folder}'.");
        var bytes = prep.ResizeSize * prep.ResizeSize * 3;
        var pixels = new byte[kept.Length * bytes];
        for (var k = 0; k < kept.Length; k++) kept[k].Rgb.CopyTo(pixels, k * bytes);
        return (new ImageSet(pixels, new int[kept.Length], prep.ResizeSize, new LabelSet(["image"]), folder), $"image folder {folder} ({kept.Length} images)");
    }
}
