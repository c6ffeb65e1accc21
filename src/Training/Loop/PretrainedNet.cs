using AlexNet.Model;
using AlexNet.Model.Onnx;
using AlexNet.Training.Networks;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AlexNet.Training.Loop;

/// <summary>
/// A pretrained AlexNet whose last layer was replaced for a new class count, behind one fine-tuning loop: the
/// paper's two-tower net from one of our checkpoints (fc8 replaced), or torchvision's from a PyTorch state dict
/// (classifier.6 replaced). The new layer starts at N(0, 0.01) with zero bias, as the paper's fc8 did.
/// </summary>
public abstract class PretrainedNet(nn.Module<Tensor, Tensor> module, Device device, string preset, int inputSize, int resizeSize,
    int classes, Linear lastLayer) : IDisposable
{
    /// <summary>The network, placed: pixels (N, 3, S, S) in 0..255 to logits (N, classes).</summary>
    public nn.Module<Tensor, Tensor> Module { get; } = module;
    /// <summary>Where the logits (and so the labels) live.</summary>
    public Device Device { get; } = device;
    /// <summary>"paper", "compact" or "torchvision".</summary>
    public string Preset { get; } = preset;
    public int InputSize { get; } = inputSize;
    public int ResizeSize { get; } = resizeSize;
    public int Classes { get; } = classes;
    /// <summary>The replaced last layer (fc8, classifier.6).</summary>
    public Linear LastLayer { get; } = lastLayer;

    /// <summary>Every parameter except the last layer's.</summary>
    public IEnumerable<Parameter> PretrainedParameters
    {
        get
        {
            var last = LastLayer.parameters().Select(p => p.Handle).ToHashSet();
            return Module.parameters().Where(p => !last.Contains(p.Handle));
        }
    }

    /// <summary>Writes the current weights as the run's best (best.ckpt or best.pth, atomically) and returns the path.</summary>
    public abstract string SaveBest(string dir, TrainOptions options, TrainState state, LabelSet labels);

    public void Dispose()
    {
        Module.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Which kind of file <paramref name="path"/> is, and the sizes its net expects, without loading weights.</summary>
    public static (string Preset, int InputSize, int ResizeSize) Probe(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"No model to fine-tune at '{path}' (expected a .ckpt of ours or a PyTorch .pth).", path);
        if (IsZip(path))
        {
            var tv = new TorchvisionAlexNetSpec(1);
            return (tv.Preset, tv.InputSize, tv.ResizeSize);
        }
        var spec = Checkpoint.ReadHeader(path).Spec;
        return (spec.Preset, spec.InputSize, spec.ResizeSize);
    }

    /// <summary>Loads <paramref name="path"/> with a new last layer of <paramref name="classes"/> outputs. Seed torch first.</summary>
    public static PretrainedNet Open(string path, int classes, DevicePlacement placement) =>
        IsZip(path) ? TorchvisionNet.Load(path, classes, placement.A) : TwoTowerNet.Load(path, classes, placement);

    /// <summary>torch.save writes a zip archive (PyTorch 1.6 and later); our checkpoints start with their magic.</summary>
    public static bool IsZip(string path)
    {
        using var f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        return f.ReadAtLeast(head, 4, throwOnEndOfStream: false) == 4 && head.SequenceEqual("PK\x03\x04"u8);
    }

    static Linear FreshLastLayer(Linear layer)
    {
        using var _ = no_grad();
        layer.weight!.normal_(0, 0.01);
        layer.bias!.zero_();
        return layer;
    }

    sealed class TwoTowerNet(AlexNetModule model, Linear fc8)
        : PretrainedNet(model, model.DeviceA, model.Spec.Preset, model.Spec.InputSize, model.Spec.ResizeSize, model.Spec.Classes, fc8)
    {
        readonly AlexNetModule _model = model;

        public static TwoTowerNet Load(string path, int classes, DevicePlacement placement)
        {
            var (header, source) = Checkpoint.Load(path);
            using (source)
            {
                var model = new AlexNetModule(header.Spec with { Classes = classes }, header.Normalization);
                using (no_grad())
                    foreach (var (to, from) in model.Layers().Zip(source.Layers()).Where(p => p.First.Name != "fc8"))
                    {
                        to.Weight.copy_(from.Weight);
                        to.Bias.copy_(from.Bias);
                    }
                var fc8 = FreshLastLayer((Linear)model.Layers().Single(l => l.Name == "fc8").Layer);
                model.Place(placement.A, placement.B);
                return new TwoTowerNet(model, fc8);
            }
        }

        /// <summary>A checkpoint like the trainer's, so <c>export</c> and <c>evaluate --checkpoint</c> read it. It holds
        /// no optimizer state and is named best.ckpt only: <c>resume</c> would continue with the from-scratch recipe.</summary>
        public override string SaveBest(string dir, TrainOptions options, TrainState state, LabelSet labels)
        {
            var path = Path.Combine(dir, "best.ckpt");
            Checkpoint.Save(path, new CheckpointHeader(options, state, _model.Spec, _model.Normalization, labels, null, null), _model, null);
            return path;
        }
    }

    sealed class TorchvisionNet(TorchvisionAlexNet model)
        : PretrainedNet(model, model.Device, model.Spec.Preset, model.Spec.InputSize, model.Spec.ResizeSize, model.Spec.Classes, model.LastLayer)
    {
        readonly TorchvisionAlexNet _model = model;

        public static TorchvisionNet Load(string path, int classes, Device device)
        {
            var sd = TorchvisionWeights.Read(path);
            try
            {
                var model = new TorchvisionAlexNet(new TorchvisionAlexNetSpec(classes));
                TorchvisionWeights.CopyInto(model, sd, path, lastLayer: false);
                FreshLastLayer(model.LastLayer);
                model.Place(device);
                return new TorchvisionNet(model);
            }
            finally { foreach (var t in sd.Values) t.Dispose(); }
        }

        /// <summary>A PyTorch state dict (torchvision.models.alexnet(num_classes=N) loads it) and labels.txt beside it.</summary>
        public override string SaveBest(string dir, TrainOptions options, TrainState state, LabelSet labels)
        {
            var path = Path.Combine(dir, "best.pth");
            TorchvisionWeights.Save(_model, path);
            AtomicFile.Write(Path.Combine(dir, "labels.txt"), s =>
            {
                using var w = new StreamWriter(s, leaveOpen: true);
                for (var i = 0; i < labels.Count; i++)
                    w.WriteLine(labels.Synsets is { } syn ? $"{syn[i]}\t{labels.Names[i]}" : labels.Names[i]);
            });
            return path;
        }
    }
}
