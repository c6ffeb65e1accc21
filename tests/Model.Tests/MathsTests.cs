using AlexNet.Model.Onnx;

namespace AlexNet.Model.Tests;

public class MathsTests
{
    [Fact]
    public void TopKIsSortedLargestFirstWithTiesToTheLowerIndex()
    {
        float[] scores = [0.1f, 0.4f, 0.05f, 0.4f, 0.3f, 0.15f];
        var top = Maths.TopK(scores, 3);
        Assert.Equal([1, 3, 4], top.Select(t => t.Index));
        Assert.Equal([0.4f, 0.4f, 0.3f], top.Select(t => t.Score));
        Assert.Equal(6, Maths.TopK(scores, 100).Length);
        Assert.Empty(Maths.TopK(scores, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Maths.TopK(scores, -1));
        var all = Maths.TopK(scores, 6).Select(t => t.Score).ToArray();
        Assert.Equal(all.OrderByDescending(s => s), all);
    }

    [Fact]
    public void EuclideanDistanceIsTheL2Norm()
    {
        Assert.Equal(5f, Maths.Euclidean([0f, 0f], [3f, 4f]), 5);
        Assert.Equal(0f, Maths.Euclidean([1f, 2f, 3f], [1f, 2f, 3f]));
        Assert.Equal(0.0, Maths.RelativeL2([1f, 2f], [1f, 2f]));
        Assert.Equal(0.5, Maths.RelativeL2([3f, 4f], [6f, 8f]), 6);
    }

    [Fact]
    public void ProtobufVarintsAndFieldsFollowTheWireFormat()
    {
        // Field 1, varint 150 -> 08 96 01 (the protobuf documentation's example); field 2, string "hi" -> 12 02 68 69.
        var bytes = new ProtoWriter().Varint(1, 150).String(2, "hi").Float(3, 1f).ToArray();
        Assert.Equal(new byte[] { 0x08, 0x96, 0x01, 0x12, 0x02, 0x68, 0x69, 0x1d, 0x00, 0x00, 0x80, 0x3f }, bytes);
        Assert.Equal(new byte[] { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 }, new ProtoWriter().Varint(1, -1).ToArray());
    }

    [Fact]
    public void InitializersMustMatchTheirShape()
    {
        var e = Assert.Throws<ArgumentException>(() => new OnnxModelBuilder().Initializer("w", new float[5], 2, 3));
        Assert.Contains("'w'", e.Message);
    }

    [Fact]
    public void AtomicWriteKeepsTheOldFileWhenTheWriterFails()
    {
        var dir = Directory.CreateTempSubdirectory("atomic-").FullName;
        var path = Path.Combine(dir, "f.bin");
        AtomicFile.Write(path, s => s.Write([1, 2, 3]));
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s => { s.Write([9, 9]); throw new InvalidOperationException("boom"); }));
        Assert.Equal(new byte[] { 1, 2, 3 }, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void PresetsHaveThePapersGeometry()
    {
        var paper = AlexNetSpec.Paper();
        Assert.Equal((55, 27, 13, 6), (paper.Conv1Out, paper.Pool1Out, paper.Pool2Out, paper.Pool5Out));
        Assert.Equal(9216, paper.Fc6Inputs);
        Assert.Equal(4096, paper.FeatureDim);
        Assert.Throws<ArgumentException>(() => AlexNetSpec.FromPreset("vgg", 10));
    }
}
