namespace AlexNet.Training.Tests;

public class DataTests
{
    static readonly ImagePreprocessor Prep = new(AlexNetSpec.Compact());

    [Fact]
    public void ImageFolderReadsClassesInOrderAndSkipsUnreadableFilesByPath()
    {
        using var dir = new TempDir();
        Fixtures.ImageFolder(dir.Path, ["zebra", "apple", "mango"], trainPerClass: 3, valPerClass: 1);
        var skipped = new List<string>();
        var set = ImageSet.FromFolder(Path.Combine(dir.Path, "train"), Prep, (file, _) => skipped.Add(file));
        Assert.Equal(["apple", "mango", "zebra"], set.Classes.Names);
        Assert.Equal(9, set.Count);
        Assert.Equal([0, 0, 0, 1, 1, 1, 2, 2, 2], set.Labels);
        Assert.Equal(64, set.Size);
        Assert.Equal(Path.Combine(dir.Path, "train", "zebra", "broken.jpg"), Assert.Single(skipped));
    }

    [Fact]
    public void FilesOfKindsTheWorkerDoesNotReadAreCountedAndReported()
    {
        using var dir = new TempDir();
        Fixtures.ImageFolder(dir.Path, ["a", "b"], trainPerClass: 2, valPerClass: 1);
        foreach (var name in new[] { "a/scan1.tif", "a/scan2.TIF", "b/notes.txt" })
            File.WriteAllBytes(Path.Combine(dir.Path, "train", name), [1, 2, 3]);
        var skipped = new List<(string What, string Why)>();
        var set = ImageSet.FromFolder(Path.Combine(dir.Path, "train"), Prep, (what, why) => skipped.Add((what, why)));
        Assert.Equal(4, set.Count);
        var tif = Assert.Single(skipped, s => s.What.Contains("'.tif'"));
        Assert.StartsWith("2 file(s)", tif.What);
        Assert.Contains("not read", tif.Why);
        Assert.Single(skipped, s => s.What.StartsWith("1 file(s) ending '.txt'", StringComparison.Ordinal));
    }

    [Fact]
    public void IdxReaderExpandsGreyToRgbAndKeepsLabels()
    {
        using var dir = new TempDir();
        Fixtures.Idx(dir.Path, 25);
        var set = ImageSet.FromIdx(dir.File("train-images-idx3-ubyte.gz"), dir.File("train-labels-idx1-ubyte.gz"), Prep, LabelSet.FashionMnist);
        Assert.Equal(25, set.Count);
        Assert.Equal(Enumerable.Range(0, 25).Select(i => i % 10), set.Labels);
        for (var i = 0; i < set.Count; i++)
        {
            var rgb = set.Rgb(i);
            var v = (byte)((i * 10 + i % 10) % 256);
            Assert.True(rgb.ToArray().All(b => b == v), $"image {i}: a flat grey image stays flat and grey after resizing");
        }
    }

    [Fact]
    public void IdxReaderRejectsAFileWithTheWrongMagic()
    {
        using var dir = new TempDir();
        IdxFile.Write(dir.File("x.gz"), 2049, [3], [1, 2, 3]);
        var e = Assert.Throws<InvalidDataException>(() => IdxFile.ReadImages(dir.File("x.gz")));
        Assert.Contains("magic 2049", e.Message);
    }

    /// <summary>A prepared image whose red channel is x and green channel is y, so a crop tells where it came from.</summary>
    static PreparedImage Coordinates()
    {
        var rgb = new byte[64 * 64 * 3];
        for (var y = 0; y < 64; y++)
            for (var x = 0; x < 64; x++) { rgb[(y * 64 + x) * 3] = (byte)x; rgb[(y * 64 + x) * 3 + 1] = (byte)y; rgb[(y * 64 + x) * 3 + 2] = 7; }
        return new PreparedImage(rgb, 64);
    }

    [Fact]
    public void RandomCropsStayInBoundsAndFlipsMirrorTheCrop()
    {
        var image = Coordinates();
        var augmenter = new Augmenter(Prep, lighting: null);
        var chw = new float[Prep.CropLength];
        var plane = 56 * 56;
        var seenX = new HashSet<int>();
        int flipped = 0;
        for (var seed = 0; seed < 400; seed++)
        {
            augmenter.Write(image, new Random(seed), chw);
            var (left, right, top) = ((int)chw[0], (int)chw[55], (int)chw[plane]);
            var flip = left > right;
            var x0 = flip ? right : left;
            Assert.InRange(x0, 0, 64 - 56);
            Assert.InRange(top, 0, 64 - 56);
            Assert.Equal(55, Math.Abs(right - left));          // a full 56-wide row, mirrored or not
            Assert.Equal(7f, chw[2 * plane + 123]);
            seenX.Add(x0);
            if (flip) flipped++;
        }
        Assert.Equal(9, seenX.Count);                          // every offset 0..8 occurs
        Assert.InRange(flipped, 150, 250);                     // about half are mirrored
    }

    [Fact]
    public void TenCropsAreTheFourCornersTheCentreAndTheirMirrors()
    {
        var crops = Prep.TenCrops;
        Assert.Equal(10, crops.Count);
        Assert.Equal([(0, 0), (8, 0), (0, 8), (8, 8), (4, 4)], crops.Take(5).Select(c => (c.X, c.Y)));
        Assert.All(crops.Take(5), c => Assert.False(c.Flip));
        Assert.Equal(crops.Take(5).Select(c => (c.X, c.Y)), crops.Skip(5).Select(c => (c.X, c.Y)));
        Assert.All(crops.Skip(5), c => Assert.True(c.Flip));
    }

    [Fact]
    public void PcaOffsetFollowsThePapersFormula()
    {
        var pca = PcaLighting.ImageNet;
        double[] alpha = [0.1, -0.2, 0.05];
        var offset = pca.Offset(alpha);
        for (var c = 0; c < 3; c++)
        {
            var expected = 255 * (pca.EigenVectors[c, 0] * alpha[0] * 0.2175 + pca.EigenVectors[c, 1] * alpha[1] * 0.0188
                                  + pca.EigenVectors[c, 2] * alpha[2] * 0.0045);
            Assert.Equal(expected, offset[c], 4);
        }
    }

    [Fact]
    public void PcaLightingShiftsEachChannelByOneConstantWithAlphaStd01()
    {
        var image = Coordinates();
        var plain = new Augmenter(Prep, lighting: null);
        var lit = new Augmenter(Prep, PcaLighting.ImageNet);
        var (a, b) = (new float[Prep.CropLength], new float[Prep.CropLength]);
        var plane = 56 * 56;
        var alphas = new List<double>();
        var v = PcaLighting.ImageNet.EigenVectors;
        for (var seed = 0; seed < 2000; seed++)
        {
            plain.Write(image, new Random(seed), a);    // the crop and flip draws come first, so both see the same window
            lit.Write(image, new Random(seed), b);
            var shift = new double[3];
            for (var c = 0; c < 3; c++)
            {
                shift[c] = b[c * plane] - a[c * plane];
                Assert.InRange(b[c * plane + plane - 1] - a[c * plane + plane - 1] - shift[c], -1e-3, 1e-3);   // same for every pixel
            }
            // Recover alpha_1 from the offset: p1 . shift / 255 / lambda_1 (eigenvectors are orthonormal).
            alphas.Add((v[0, 0] * shift[0] + v[1, 0] * shift[1] + v[2, 0] * shift[2]) / 255 / 0.2175);
        }
        var mean = alphas.Average();
        var std = Math.Sqrt(alphas.Select(x => (x - mean) * (x - mean)).Average());
        Assert.InRange(mean, -0.01, 0.01);
        Assert.InRange(std, 0.09, 0.11);
    }

    [Fact]
    public void EigenDecompositionRecoversAKnownCovariance()
    {
        // Covariance of RGB over a set whose pixels lie on a line (r = g = b) has one non-zero eigenvalue along (1,1,1)/sqrt3.
        var rgb = new byte[64 * 64 * 3 * 4];
        var rng = new Random(3);
        for (var p = 0; p < rgb.Length; p += 3) rgb[p] = rgb[p + 1] = rgb[p + 2] = (byte)rng.Next(256);
        var set = new ImageSet(rgb, [0, 0, 0, 0], 64, new LabelSet(["x"]), "test");
        var pca = PcaLighting.FromData(set);
        Assert.True(pca.EigenValues[0] > 1000 * Math.Max(pca.EigenValues[1], 1e-12));
        var p1 = new[] { pca.EigenVectors[0, 0], pca.EigenVectors[1, 0], pca.EigenVectors[2, 0] };
        Assert.All(p1, x => Assert.Equal(1 / Math.Sqrt(3), Math.Abs(x), 3));
        var (values, vectors) = PcaLighting.SymmetricEigen(new double[,] { { 4, 1, 0 }, { 1, 3, 0 }, { 0, 0, 1 } });
        Assert.Equal((7 + Math.Sqrt(5)) / 2, values[0], 9);
        Assert.Equal((7 - Math.Sqrt(5)) / 2, values[1], 9);
        Assert.Equal(1, values[2], 9);
        Assert.Equal(0, vectors[2, 0], 9);
    }
}
