using System.Collections;
using AlexNet.Model;
using AlexNet.Model.Onnx;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace AlexNet.Training.Networks;

/// <summary>
/// Reads and writes PyTorch state-dict files (<c>torch.save(model.state_dict(), path)</c>) for
/// <see cref="TorchvisionAlexNet"/> through TorchSharp.PyBridge. Only the zip format of PyTorch 1.6 and later is read;
/// files saved whole (<c>torch.save(model)</c>) or in the legacy format get an error that says how to re-save them.
/// </summary>
public static class TorchvisionWeights
{
    /// <summary>classifier.6: the last layer, replaced when the class count changes.</summary>
    public static IReadOnlyList<string> LastLayerKeys { get; } = ["classifier.6.weight", "classifier.6.bias"];

    const string Resave = "Re-save it from Python as a state dict in the current format: " +
                          "torch.save(torch.load('old.pth', map_location='cpu'), 'new.pth') for a state dict, " +
                          "torch.save(model.state_dict(), 'new.pth') for a whole model.";

    /// <summary>The file's tensors by key (on the CPU). A "module." prefix (nn.DataParallel) is removed.</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"No weights file at '{path}'.", path);
        Hashtable table;
        try
        {
            using var stream = File.OpenRead(path);
            table = PyTorchUnpickler.UnpickleStateDict(stream);
        }
        catch (Exception e) when (e is NotImplementedException or InvalidCastException or InvalidDataException
                                      or InvalidOperationException or Razorvine.Pickle.PickleException or EndOfStreamException)
        {
            throw new InvalidDataException($"{path} is not a PyTorch state dict that can be read ({e.Message}). {Resave}", e);
        }
        var sd = new Dictionary<string, Tensor>();
        foreach (DictionaryEntry kv in table)
            if (kv.Key is string key && kv.Value is Tensor t) sd[key] = t;
        if (sd.Count > 0 && sd.Keys.All(k => k.StartsWith("module.", StringComparison.Ordinal)))
            sd = sd.ToDictionary(kv => kv.Key["module.".Length..], kv => kv.Value);
        return sd;
    }

    /// <summary>The class count of a torchvision AlexNet state dict: the rows of classifier.6.weight.</summary>
    public static int Classes(IReadOnlyDictionary<string, Tensor> sd, string source) =>
        sd.TryGetValue("classifier.6.weight", out var w) && w.ndim == 2 ? (int)w.shape[0]
            : throw new InvalidDataException($"{source} has no classifier.6.weight of rank 2, so it is not torchvision's AlexNet. " +
                                             $"Its keys: {Describe(sd)}.");

    /// <summary>A model with the file's weights and its class count.</summary>
    public static TorchvisionAlexNet LoadModel(string path)
    {
        var sd = Read(path);
        try
        {
            var model = new TorchvisionAlexNet(new TorchvisionAlexNetSpec(Classes(sd, path)));
            CopyInto(model, sd, path, lastLayer: true);
            return model;
        }
        finally { foreach (var t in sd.Values) t.Dispose(); }
    }

    /// <summary>
    /// Copies every tensor of <paramref name="sd"/> into <paramref name="model"/> after checking that the keys are
    /// torchvision's and the shapes match; with <paramref name="lastLayer"/> false, classifier.6 is left as it is
    /// (fine-tuning to another class count). Converts other float types (half, double) to float32.
    /// </summary>
    public static void CopyInto(TorchvisionAlexNet model, IReadOnlyDictionary<string, Tensor> sd, string source, bool lastLayer)
    {
        var target = model.state_dict();
        var wanted = target.Keys.Where(k => lastLayer || !LastLayerKeys.Contains(k)).ToArray();
        var missing = wanted.Where(k => !sd.ContainsKey(k)).ToArray();
        var unexpected = sd.Keys.Where(k => !target.ContainsKey(k)).ToArray();
        if (missing.Length > 0 || unexpected.Length > 0)
            throw new InvalidDataException($"{source} is not a torchvision AlexNet state dict: " +
                                           (missing.Length > 0 ? $"missing {string.Join(", ", missing)}; " : "") +
                                           (unexpected.Length > 0 ? $"unexpected {string.Join(", ", unexpected)}; " : "") +
                                           $"expected {string.Join(", ", TorchvisionAlexNetSpec.Keys)}.");
        foreach (var key in wanted)
            if (!sd[key].shape.SequenceEqual(target[key].shape))
                throw new InvalidDataException($"{source}: {key} is [{string.Join(", ", sd[key].shape)}], " +
                                               $"the model needs [{string.Join(", ", target[key].shape)}].");
        using var _ = no_grad();
        foreach (var key in wanted)
        {
            if (!sd[key].is_floating_point())
                throw new InvalidDataException($"{source}: {key} holds {sd[key].dtype}, not floating-point weights.");
            target[key].copy_(sd[key].to(target[key].dtype));
        }
    }

    /// <summary>Writes the model's state dict as PyTorch does: <c>torchvision.models.alexnet(num_classes=N)
    /// .load_state_dict(torch.load(path))</c> reads it. Atomic.</summary>
    public static void Save(TorchvisionAlexNet model, string path) =>
        AtomicFile.Write(path, stream => model.save_py(stream, leaveOpen: true));

    /// <summary>Weights as row-major floats by torchvision's key, for the ONNX writer.</summary>
    public static Dictionary<string, WeightTensor> ForOnnx(TorchvisionAlexNet model) =>
        model.Weights().ToDictionary(w => w.Key, w => Export.OnnxExporter.ToWeight(w.Value));

    static string Describe(IReadOnlyDictionary<string, Tensor> sd) =>
        sd.Count == 0 ? "none" : string.Join(", ", sd.Keys.Take(12)) + (sd.Count > 12 ? $", ... ({sd.Count} in all)" : "");
}
