using System.Runtime.InteropServices;
using AlexNet.Model;
using AlexNet.Model.Onnx;
using AlexNet.Training.Networks;
using static TorchSharp.torch;

namespace AlexNet.Training.Export;

/// <summary>
/// Writes a trained <see cref="AlexNetModule"/> as one ONNX graph (TorchSharp has no exporter, dotnet/TorchSharp#1281):
/// the weights are copied out by the paper's layer names and <see cref="AlexNetOnnxGraph"/> lays out the nodes.
/// The file is written atomically.
/// </summary>
public static class OnnxExporter
{
    public static void Export(AlexNetModule model, LabelSet labels, Provenance provenance, string path, LrnForm lrn = LrnForm.BandedConv)
    {
        var weights = Weights(model);
        var metadata = new ModelMetadata(labels.Names, labels.Synsets, provenance);
        AlexNetOnnxGraph.Build(model.Spec, weights, model.Normalization, metadata, lrn).Save(path);
    }

    /// <summary>Every layer's weight and bias as row-major floats, in the paper's names (conv1a.weight, ...).</summary>
    public static Dictionary<string, WeightTensor> Weights(AlexNetModule model)
    {
        var weights = new Dictionary<string, WeightTensor>();
        foreach (var (name, _, w, b) in model.Layers())
        {
            weights[$"{name}.weight"] = ToWeight(w);
            weights[$"{name}.bias"] = ToWeight(b);
        }
        return weights;
    }

    internal static WeightTensor ToWeight(Tensor t)
    {
        using var cpu = t.detach().cpu().contiguous();
        // Tensor.bytes is a span over the storage: 6x faster than data<float>().ToArray() for 61M parameters.
        var data = MemoryMarshal.Cast<byte, float>(cpu.bytes).ToArray();
        return new WeightTensor(data, cpu.shape);
    }
}
