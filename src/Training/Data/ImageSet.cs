using System.IO.Compression;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Training.Data;

/// <summary>
/// A labelled data set after the paper's first step (shorter side to ResizeSize, central square), kept decoded in
/// memory: N x R x R x 3 bytes in one array (Fashion-MNIST at R = 64: 737 MB for 60,000 images).
/// </summary>
public sealed class ImageSet
{
    public ImageSet(byte[] pixels, int[] labels, int size, LabelSet classes, string source)
    {
        if (pixels.Length != (long)labels.Length * size * size * 3)
            throw new ArgumentException($"{labels.Length} labels but {pixels.Length} bytes of {size}x{size} RGB images.");
        (Pixels, Labels, Size, Classes, Source) = (pixels, labels, size, classes, source);
    }

    public byte[] Pixels { get; }
    public int[] Labels { get; }
    public int Size { get; }
    public LabelSet Classes { get; }
    public string Source { get; }
    public int Count => Labels.Length;
    public int ImageBytes => Size * Size * 3;

    public PreparedImage this[int i] => new(Pixels.AsSpan(i * ImageBytes, ImageBytes).ToArray(), Size);
    public ReadOnlySpan<byte> Rgb(int i) => Pixels.AsSpan(i * ImageBytes, ImageBytes);

    /// <summary>The first <paramref name="count"/> images and the rest, in a seeded shuffled order: a held-out
    /// validation split for data sets that ship only train and test (Fashion-MNIST).</summary>
    public (ImageSet Held, ImageSet Remaining) Split(int count, int seed)
    {
        var order = SplitOrder(Count, seed);
        return (Subset(order[..count], "held-out"), Subset(order[count..], "rest"));
    }

    /// <summary>The seeded order of <see cref="Split"/>: its first <c>count</c> indices are the held-out images.</summary>
    public static int[] SplitOrder(int total, int seed)
    {
        var order = Enumerable.Range(0, total).ToArray();
        new Random(seed).Shuffle(order);
        return order;
    }

    public ImageSet Subset(IReadOnlyList<int> indices, string what)
    {
        var pixels = new byte[indices.Count * ImageBytes];
        var labels = new int[indices.Count];
        for (var i = 0; i < indices.Count; i++)
        {
            Rgb(indices[i]).CopyTo(pixels.AsSpan(i * ImageBytes));
            labels[i] = Labels[indices[i]];
        }
        return new ImageSet(pixels, labels, Size, Classes, $"{Source} ({what}, {indices.Count})");
    }

    /// <summary>The first <paramref name="limit"/> images (smoke runs, --limit), or this set when there are no more.</summary>
    public ImageSet Take(int? limit) =>
        limit is { } l && l < Count ? Subset(Enumerable.Range(0, l).ToArray(), "limit") : this;

    /// <summary>Per-channel mean and standard deviation in pixel units (0..255).</summary>
    public Normalization ChannelStatistics(int maxImages = 10_000)
    {
        var step = Math.Max(1, Count / maxImages);
        double[] sum = new double[3], sq = new double[3];
        long n = 0;
        for (var i = 0; i < Count; i += step)
        {
            var rgb = Rgb(i);
            for (var p = 0; p < rgb.Length; p += 3)
                for (var c = 0; c < 3; c++) { double v = rgb[p + c]; sum[c] += v; sq[c] += v * v; }
            n += rgb.Length / 3;
        }
        var mean = sum.Select(s => (float)(s / n)).ToArray();
        var std = sq.Select((s, c) => (float)Math.Sqrt(Math.Max(s / n - mean[c] * (double)mean[c], 1e-6))).ToArray();
        return new Normalization(mean, std);
    }

    /// <summary>
    /// Reads an image-folder tree: <c>root/&lt;class&gt;/*.jpg|jpeg|png|gif|webp</c>, classes in ordinal order of their
    /// folder names. Files that do not decode are reported through <paramref name="skipped"/> and left out.
    /// </summary>
    public static ImageSet FromFolder(string root, ImagePreprocessor prep, Action<string, string> skipped, LabelSet? classes = null)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"Image folder '{root}' does not exist.");
        var names = classes?.Names.ToArray() ?? Directory.GetDirectories(root).Select(Path.GetFileName).OfType<string>()
            .Order(StringComparer.Ordinal).ToArray();
        if (names.Length == 0) throw new InvalidDataException($"'{root}' has no class folders (expected root/<class>/<image>).");
        string[] extensions = [".jpg", ".jpeg", ".png", ".gif", ".webp"];
        var all = names.SelectMany((name, label) =>
            (Directory.Exists(Path.Combine(root, name)) ? Directory.GetFiles(Path.Combine(root, name)) : [])
                .Order(StringComparer.Ordinal)
                .Select(f => (File: f, Label: label))).ToArray();
        var files = all.Where(f => extensions.Contains(Path.GetExtension(f.File).ToLowerInvariant())).ToArray();
        // Files of other kinds (a .tif, a .txt) are not read: say how many, of which kinds, rather than pass over them.
        foreach (var kind in all.Except(files).GroupBy(f => Path.GetExtension(f.File).ToLowerInvariant()))
            skipped($"{kind.Count()} file(s) ending '{(kind.Key.Length == 0 ? "(none)" : kind.Key)}' under {root}, e.g. {kind.First().File}",
                $"not read: only {string.Join(", ", extensions)} files are");
        var decoded = new PreparedImage?[files.Length];
        Parallel.For(0, files.Length, i =>
        {
            try
            {
                using var image = SafeImageDecoder.Default.Decode(File.ReadAllBytes(files[i].File));
                decoded[i] = prep.Prepare(image);
            }
            catch (ImageRejectedException e) { lock (skipped) skipped(files[i].File, e.Message); }
            catch (IOException e) { lock (skipped) skipped(files[i].File, e.Message); }
        });
        var kept = Enumerable.Range(0, files.Length).Where(i => decoded[i] is not null).ToArray();
        if (kept.Length == 0) throw new InvalidDataException($"No readable images under '{root}'.");
        var bytes = prep.ResizeSize * prep.ResizeSize * 3;
        var pixels = new byte[kept.Length * bytes];
        for (var k = 0; k < kept.Length; k++) decoded[kept[k]]!.Rgb.CopyTo(pixels, k * bytes);
        return new ImageSet(pixels, kept.Select(i => files[i].Label).ToArray(), prep.ResizeSize,
            classes ?? new LabelSet(names), root);
    }

    /// <summary>Reads Fashion-MNIST (or MNIST) from its gzipped IDX files; grey is expanded to RGB.</summary>
    /// <param name="only">Prepare only these images (indices into the file, after <paramref name="limit"/>), in this order.</param>
    public static ImageSet FromIdx(string imagesGz, string labelsGz, ImagePreprocessor prep, LabelSet classes, int? limit = null,
        IReadOnlyList<int>? only = null)
    {
        var (grey, rows, cols) = IdxFile.ReadImages(imagesGz, limit);
        var allLabels = IdxFile.ReadLabels(labelsGz, limit);
        if (allLabels.Length != grey.Length / (rows * cols))
            throw new InvalidDataException($"{imagesGz} has {grey.Length / (rows * cols)} images but {labelsGz} has {allLabels.Length} labels.");
        if (allLabels.Any(l => l < 0 || l >= classes.Count))
            throw new InvalidDataException($"{labelsGz} has labels outside 0..{classes.Count - 1}.");
        var index = only?.ToArray() ?? Enumerable.Range(0, allLabels.Length).ToArray();
        if (index.Any(i => i < 0 || i >= allLabels.Length))
            throw new ArgumentOutOfRangeException(nameof(only), $"{imagesGz} has {allLabels.Length} images.");
        var labels = index.Select(i => allLabels[i]).ToArray();
        var bytes = prep.ResizeSize * prep.ResizeSize * 3;
        var pixels = new byte[labels.Length * bytes];
        Parallel.For(0, labels.Length, k =>
        {
            var i = index[k];
            using var image = new Image<Rgb24>(cols, rows);
            for (var y = 0; y < rows; y++)
                for (var x = 0; x < cols; x++)
                {
                    var v = grey[(i * rows + y) * cols + x];
                    image[x, y] = new Rgb24(v, v, v);
                }
            prep.Prepare(image).Rgb.CopyTo(pixels, k * bytes);
        });
        return new ImageSet(pixels, labels, prep.ResizeSize, classes, imagesGz);
    }
}

/// <summary>The IDX format of (Fashion-)MNIST: big-endian, magic 2051 for images and 2049 for labels, gzipped.</summary>
public static class IdxFile
{
    public static (byte[] Pixels, int Rows, int Cols) ReadImages(string path, int? limit = null)
    {
        using var r = Open(path, 2051, out var count);
        int rows = ReadInt(r), cols = ReadInt(r);
        count = Math.Min(count, limit ?? count);
        var pixels = r.ReadBytes(count * rows * cols);
        if (pixels.Length != count * rows * cols) throw new InvalidDataException($"{path} is truncated.");
        return (pixels, rows, cols);
    }

    public static int[] ReadLabels(string path, int? limit = null)
    {
        using var r = Open(path, 2049, out var count);
        count = Math.Min(count, limit ?? count);
        var bytes = r.ReadBytes(count);
        if (bytes.Length != count) throw new InvalidDataException($"{path} is truncated.");
        return bytes.Select(b => (int)b).ToArray();
    }

    static BinaryReader Open(string path, int magic, out int count)
    {
        Stream s = File.OpenRead(path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)) s = new GZipStream(s, CompressionMode.Decompress);
        var r = new BinaryReader(new BufferedStream(s, 1 << 16));
        var m = ReadInt(r);
        if (m != magic) { r.Dispose(); throw new InvalidDataException($"{path}: magic {m}, expected {magic}."); }
        count = ReadInt(r);
        return r;
    }

    static int ReadInt(BinaryReader r) => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(r.ReadBytes(4));

    /// <summary>Writes an IDX file (used by tests to make small fixtures).</summary>
    public static void Write(string path, int magic, int[] dims, byte[] data)
    {
        using var f = File.Create(path);
        using Stream s = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? new GZipStream(f, CompressionLevel.Fastest) : f;
        var header = new byte[4 * (2 + dims.Length - 1)];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header, magic);
        for (var i = 0; i < dims.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), dims[i]);
        s.Write(header, 0, 4 + 4 * dims.Length);
        s.Write(data);
    }
}
