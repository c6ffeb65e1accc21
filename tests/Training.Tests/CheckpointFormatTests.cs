using System.Text;
using System.Text.Json;
using AlexNet.Training.Loop;
using AlexNet.Training.Networks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AlexNet.Training.Tests;

/// <summary>Checkpoint format 2 (length-prefixed optimizer section) and reading format 1 files.</summary>
public class CheckpointFormatTests
{
    public CheckpointFormatTests() => TorchSetup.Ensure();

    static (AlexNetModule Model, SGD Optimizer, CheckpointHeader Header) SteppedModel()
    {
        random.manual_seed(6);
        var spec = AlexNetSpec.Compact(3);
        var norm = new Normalization([120f, 115f, 100f], [60f, 58f, 57f]);
        var model = new AlexNetModule(spec, norm);
        model.Initialize(InitScheme.Kaiming);
        var optimizer = optim.SGD(model.parameters(), 0.01, momentum: 0.9);
        optimizer.zero_grad();
        nn.functional.cross_entropy(model.call(rand(2, 3, 56, 56) * 255), tensor(new long[] { 0, 2 })).backward();
        optimizer.step();                                                  // momentum buffers are now non-zero
        var labels = new LabelSet(["a", "b", "c"]);
        return (model, optimizer, new CheckpointHeader(new TrainOptions { Preset = "compact" }, new TrainState { Epoch = 1 }, spec, norm, labels, null, null));
    }

    /// <summary>Loads with a fresh optimizer, steps both once more on the same batch, and compares the weights.</summary>
    static void AssertResumesLike(string path, AlexNetModule model, SGD optimizer)
    {
        SGD? loaded = null;
        var (_, back) = Checkpoint.Load(path, m => loaded = optim.SGD(m.parameters(), 0.01, momentum: 0.9));
        random.manual_seed(8);
        var x = rand(2, 3, 56, 56) * 255;
        var y = tensor(new long[] { 1, 0 });
        foreach (var (m, o) in new[] { (model, optimizer), (back, loaded!) })
        {
            m.eval();                                                      // no dropout: the two steps see the same net
            o.zero_grad();
            nn.functional.cross_entropy(m.call(x), y).backward();
            o.step();
        }
        var b = back.state_dict();
        foreach (var (k, v) in model.state_dict()) Assert.True(v.allclose(b[k], rtol: 1e-6, atol: 1e-7), $"{k} differs after a step");
    }

    [Fact]
    public void WeightsLoadWithoutTheOptimizerAndResumeLoadsTheMomentum()
    {
        using var dir = new TempDir();
        var (model, optimizer, header) = SteppedModel();
        Checkpoint.Save(dir.File("last.ckpt"), header, model, optimizer);
        var (readHeader, weights) = Checkpoint.Load(dir.File("last.ckpt"));
        Assert.Equal(["a", "b", "c"], readHeader.Labels.Names);
        var w = weights.state_dict();
        foreach (var (k, v) in model.state_dict()) Assert.True(v.allclose(w[k], rtol: 0, atol: 0), $"{k} differs");
        AssertResumesLike(dir.File("last.ckpt"), model, optimizer);
    }

    [Fact]
    public void AFormat1CheckpointStillLoadsWithItsMomentum()
    {
        using var dir = new TempDir();
        var (model, optimizer, header) = SteppedModel();
        var path = dir.File("v1.ckpt");
        using (var w = new BinaryWriter(File.Create(path), Encoding.UTF8))    // format 1: a bool, then the optimizer state
        {
            w.Write("ALEXNET-CKPT-1");
            w.Write(JsonSerializer.Serialize(header, Checkpoint.Json));
            model.save(w);
            w.Write(true);
            optimizer.save_state_dict(w);
            var rng = torch.random.get_rng_state().bytes.ToArray();
            w.Write(rng.Length);
            w.Write(rng);
        }
        Assert.Equal(1, Checkpoint.ReadHeader(path).State.Epoch);
        var (_, weights) = Checkpoint.Load(path);
        Assert.Equal(model.parameters().Sum(p => p.numel()), weights.parameters().Sum(p => p.numel()));
        AssertResumesLike(path, model, optimizer);
    }
}
