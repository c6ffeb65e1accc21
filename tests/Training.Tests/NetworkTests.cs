using TorchSharp;
using static TorchSharp.torch;

namespace AlexNet.Training.Tests;

public class NetworkTests
{
    public NetworkTests() => TorchSetup.Ensure();

    static AlexNetModule Paper() => new(AlexNetSpec.Paper(), Normalization.ImageNetMeanOnly);

    [Fact]
    public void PaperPresetHasThePapersParameterCount()
    {
        using var model = Paper();
        var count = model.parameters().Sum(p => p.numel());
        Assert.Equal(60_965_224L, count);
    }

    [Fact]
    public void PaperPresetLayerShapesAre55_27_13_13_13_6()
    {
        using var model = Paper();
        model.eval();
        using var _ = no_grad();
        var trace = new Dictionary<string, Tensor>();
        var (logits, features) = model.Forward(rand(2, 3, 224, 224) * 255, trace);
        long[] Shape(string n) => trace[n].shape;
        Assert.Equal(new long[] { 2, 48, 55, 55 }, Shape("conv1a"));
        Assert.Equal(new long[] { 2, 48, 27, 27 }, Shape("pool1b"));
        Assert.Equal(new long[] { 2, 128, 27, 27 }, Shape("conv2a"));
        Assert.Equal(new long[] { 2, 128, 13, 13 }, Shape("pool2b"));
        Assert.Equal(new long[] { 2, 192, 13, 13 }, Shape("conv3a"));
        Assert.Equal(new long[] { 2, 192, 13, 13 }, Shape("conv4b"));
        Assert.Equal(new long[] { 2, 128, 13, 13 }, Shape("conv5a"));
        Assert.Equal(new long[] { 2, 128, 6, 6 }, Shape("pool5b"));
        Assert.Equal(new long[] { 2, 4096 }, features.shape);
        Assert.Equal(new long[] { 2, 1000 }, logits.shape);
    }

    [Fact]
    public void CompactPresetKeepsTheTopologyAtAQuarterScale()
    {
        var spec = AlexNetSpec.Compact(10);
        using var model = new AlexNetModule(spec, Normalization.ImageNetMeanOnly);
        model.eval();
        using var _ = no_grad();
        var trace = new Dictionary<string, Tensor>();
        var (logits, features) = model.Forward(rand(1, 3, spec.InputSize, spec.InputSize) * 255, trace);
        Assert.Equal(spec.Conv1Out, trace["conv1a"].shape[2]);
        Assert.Equal(spec.Pool5Out, trace["pool5a"].shape[2]);
        Assert.Equal(new long[] { 1, spec.FeatureDim }, features.shape);
        Assert.Equal(new long[] { 1, 10 }, logits.shape);
    }

    [Fact]
    public void TowerBsConv1OnlyReachesTowerAThroughConv3()
    {
        var spec = AlexNetSpec.Compact(10);
        using var model = new AlexNetModule(spec, Normalization.ImageNetMeanOnly);
        model.Initialize(InitScheme.Kaiming);
        model.eval();
        using var _ = no_grad();
        random.manual_seed(1);
        var x = rand(2, 3, spec.InputSize, spec.InputSize) * 255;
        var before = new Dictionary<string, Tensor>();
        model.Forward(x, before);

        var conv1b = model.Layers().Single(l => l.Name == "conv1b");
        conv1b.Weight.add_(randn_like(conv1b.Weight) * 0.1);      // perturb tower b's conv1 maps
        var after = new Dictionary<string, Tensor>();
        model.Forward(x, after);

        Assert.True(before["conv2a"].eq(after["conv2a"]).all().item<bool>(), "tower a's conv2 must not see tower b");
        Assert.True(before["pool2a"].eq(after["pool2a"]).all().item<bool>());
        Assert.False(before["conv2b"].allclose(after["conv2b"]), "tower b's conv2 must change");
        Assert.False(before["conv3a"].allclose(after["conv3a"]), "conv3 of tower a sees both towers");
        Assert.False(before["conv3b"].allclose(after["conv3b"]), "conv3 of tower b sees both towers");
    }

    [Fact]
    public void WithoutCudaTheFallbackWarningNamesEveryDeviceAskedFor()
    {
        Assert.False(cuda.is_available());   // the CPU libtorch package
        var both = DevicePlacement.Parse("cuda:0,cuda:1");
        Assert.Contains("'cuda:0' and 'cuda:1' were requested", both.Warning);
        Assert.Contains("Both towers run on the CPU", both.Warning);
        var one = DevicePlacement.Parse("cpu,cuda:1");
        Assert.Contains("'cuda:1' was requested", one.Warning);
        Assert.DoesNotContain("cuda:0", one.Warning);
        Assert.Null(DevicePlacement.Parse("cpu").Warning);
    }

    [Fact]
    public void TwoDevicePlacementGivesTheSameOutputsAsOneDevice()
    {
        // Without CUDA both "devices" are the CPU: this runs every cross-device copy of the two-device path.
        var spec = AlexNetSpec.Compact(10);
        random.manual_seed(3);
        using var model = new AlexNetModule(spec, Normalization.ImageNetMeanOnly);
        model.Initialize(InitScheme.Kaiming);
        model.eval();
        using var _ = no_grad();
        var x = rand(3, 3, spec.InputSize, spec.InputSize) * 255;
        var one = model.Forward(x).Logits.clone();
        var devices = DevicePlacement.Parse("cpu,cpu");
        model.Place(devices.A, devices.B);
        var two = model.Forward(x).Logits;
        Assert.True(one.allclose(two, rtol: 1e-6, atol: 1e-6));
        Assert.Equal(DeviceType.CPU, model.DeviceB.type);
    }

    [Theory]
    [InlineData(InitScheme.Paper)]
    [InlineData(InitScheme.Caffe)]
    public void InitialWeightsAndBiasesFollowTheScheme(InitScheme scheme)
    {
        random.manual_seed(7);
        using var model = Paper();
        model.Initialize(scheme);
        var biasOnes = scheme == InitScheme.Paper ? 1.0 : 0.1;
        foreach (var (name, _, w, b) in model.Layers())
        {
            var kind = name.TrimEnd('a', 'b');
            var expectedStd = scheme == InitScheme.Caffe && kind is "fc6" or "fc7" ? 0.005 : 0.01;
            var expectedBias = kind is "conv2" or "conv4" or "conv5" or "fc6" or "fc7" ? biasOnes : 0.0;
            var std = w.std().item<float>();
            var mean = w.mean().item<float>();
            // conv1 per tower has only 48*363 = 17,424 weights: the sample std is within 2% of the true one.
            Assert.InRange(std, expectedStd * 0.97, expectedStd * 1.03);
            Assert.InRange(mean, -expectedStd * 0.05, expectedStd * 0.05);
            Assert.True(b.eq(expectedBias).all().item<bool>(), $"{name} biases should all be {expectedBias}");
        }
    }
}
