using AlexNet.Model;
using AlexNet.Model.Onnx;
using AlexNet.Training.Export;
using AlexNet.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AlexNet.Training.Training;

/// <summary>
/// A pretrained AlexNet whose last layer was replaced for a new class count, behind one fine-tuning loop: the
/// paper's two-tower net from one of our checkpoints (fc8 replaced), or torchvision's from a PyTorch state dict
/// (classifier.6 replaced). The new layer starts at N(0, 0.01) with zero bias, as the paper's fc8 did.
/// </summary>
public abstract class PretrainedNet : IDisposable
{
    public abstract nn.Module<Tensor, Tensor> Module { get; }
    /// <summary>Where the logits (and so the labels) live.</summary>
    public abstract Device Device { get; }
    /// <summary>"paper", "compact" or "torchvision".</summary>
    public abstract string Preset { get; }
    public abstract int InputSize { get; }
    public abstract int ResizeSize { get; }
    public abstract int Classes { get; }
    /// <summary>The replaced last layer (fc8, classifier.6).</summary>
    public abstract Linear LastLayer { get; }
    /// <summary>File name of the best weights in the run folder: best.ckpt or best.pth.</summary>
    public abstract string BestFileName { get; }

    /// <summary>Every parameter except the last layer's.</summary>
    public IEnumerable<Parameter> PretrainedParameters
    {
        get
        {
            var last = LastLayer.parameters().Select(p => p.Handle).ToHashSet();
            return Module.parameters().Where(p => !last.Contains(p.Handle));
        }
    }

    /// <summary>Writes the current weights as the run's best (atomically) and returns the path.</summary>
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

    /// <summary>Exports a run's best weights (best.ckpt or best.pth) as ONNX with our contract.</summary>
    public static void ExportBest(string bestPath, LabelSet labels, Provenance provenance, string onnxPath)
    {
        if (IsZip(bestPath))
        {
            using var model = TorchvisionWeights.LoadModel(bestPath);
            TorchvisionExporter.Export(model, labels, provenance, onnxPath);
        }
        else
        {
            var (_, model) = Checkpoint.Load(bestPath);
            using (model) OnnxExporter.Export(model, labels, provenance, onnxPath);
        }
    }

    /// <summary>torch.save writes a zip archive (PyTorch 1.6 and later); our checkpoints start with their magic.</summary>
    public static bool IsZip(string path)
    {
        using var f = File.OpenRead(path);
        Span<byte> head = stackalloc byte[4];
        return f.ReadAtLeast(head, 4, throwOnEndOfStream: false) == 4 && head.SequenceEqual("PK\x03\x04"u8);
    }

    static void FreshLastLayer(Linear layer)
    {
        using var _ = no_grad();
        layer.weight!.normal_(0, 0.01);
        layer.bias!.zero_();
    }

    sealed class TwoTowerNet(AlexNetModule model) : PretrainedNet
    {
        public override nn.Module<Tensor, Tensor> Module => model;
        public override Device Device => model.DeviceA;
        public override string Preset => model.Spec.Preset;
        public override int InputSize => model.Spec.InputSize;
        public override int ResizeSize => model.Spec.ResizeSize;
        public override int Classes => model.Spec.Classes;
        public override Linear LastLayer => (Linear)model.Layers().Single(l => l.Name == "fc8").Layer;
        public override string BestFileName => "best.ckpt";

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
                var net = new TwoTowerNet(model);
                FreshLastLayer(net.LastLayer);
                model.Place(placement.A, placement.B);
                return net;
            }
        }

        /// <summary>A checkpoint like the trainer's, so <c>export</c> and <c>evaluate --checkpoint</c> read it. It holds
        /// no optimizer state and is named best.ckpt only: <c>resume</c> would continue with the from-scratch recipe.</summary>
        public override string SaveBest(string dir, TrainOptions options, TrainState state, LabelSet labels)
        {
            var path = Path.Combine(dir, BestFileName);
            Checkpoint.Save(path, new CheckpointHeader(options, state, model.Spec, model.Normalization, labels, null, null), model, null);
            return path;
        }
    }

    sealed class TorchvisionNet(TorchvisionAlexNet model) : PretrainedNet
    {
        public override nn.Module<Tensor, Tensor> Module => model;
        public override Device Device => model.Device;
        public override string Preset => model.Spec.Preset;
        public override int InputSize => model.Spec.InputSize;
        public override int ResizeSize => model.Spec.ResizeSize;
        public override int Classes => model.Spec.Classes;
        public override Linear LastLayer => model.LastLayer;
        public override string BestFileName => "best.pth";

        public static TorchvisionNet Load(string path, int classes, Device device)
        {
            var sd = TorchvisionWeights.Read(path);
            try
            {
                var model = new TorchvisionAlexNet(new TorchvisionAlexNetSpec(classes));
                TorchvisionWeights.CopyInto(model, sd, path, lastLayer: false);
                var net = new TorchvisionNet(model);
                FreshLastLayer(net.LastLayer);
                model.Place(device);
                return net;
            }
            finally { foreach (var t in sd.Values) t.Dispose(); }
        }

        /// <summary>A PyTorch state dict (torchvision.models.alexnet(num_classes=N) loads it) and labels.txt beside it.</summary>
        public override string SaveBest(string dir, TrainOptions options, TrainState state, LabelSet labels)
        {
            var path = Path.Combine(dir, BestFileName);
            TorchvisionWeights.Save(model, path);
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
