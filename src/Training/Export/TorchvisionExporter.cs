using AlexNet.Model;
using AlexNet.Model.Onnx;
using AlexNet.Training.Networks;

namespace AlexNet.Training.Export;

/// <summary>
/// Writes a <see cref="TorchvisionAlexNet"/> through <see cref="TorchvisionOnnxGraph"/>: the same contract as our own
/// exports (input <c>image</c> 0..255, outputs <c>probabilities</c> and <c>features</c>, labels in the metadata), so
/// the service serves imported and fine-tuned torchvision weights like any other model. Atomic.
/// </summary>
public static class TorchvisionExporter
{
    public static void Export(TorchvisionAlexNet model, LabelSet labels, Provenance provenance, string path)
    {
        if (labels.Count != model.Spec.Classes)
            throw new ArgumentException($"{labels.Count} labels for a model with {model.Spec.Classes} classes (rows of classifier.6.weight).");
        var metadata = new ModelMetadata(labels.Names, labels.Synsets, provenance);
        TorchvisionOnnxGraph.Build(model.Spec, TorchvisionWeights.ForOnnx(model), metadata).Save(path);
    }
}
