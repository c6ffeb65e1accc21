using AlexNet.Training.Export;
using AlexNet.Training.Reporting;

namespace AlexNet.Training.Commands;

/// <summary><c>import-torchvision</c>: an <see cref="ImportRequest"/>, then <see cref="TorchvisionImport.Run"/>.</summary>
public sealed class ImportTorchvisionCommand : VerbCommand
{
    public ImportTorchvisionCommand() : base("import-torchvision", "Convert torchvision AlexNet weights (.pth) to an ONNX model the API serves.")
    {
        var weights = RequiredOpt("--weights", "torchvision AlexNet weights saved by torch.save(model.state_dict(), path) (PyTorch 1.6+ zip format).");
        var labels = RequiredOpt("--labels", "Class names in output order: one per line, or wnid<TAB>label (e.g. imagenet1k-synsets.txt for ImageNet weights).");
        var output = RequiredOpt("--out", "Where to write the .onnx file (our contract: image 0..255 in, probabilities and features out).");
        var data = Opt<string>("--data", "Also evaluate on this image folder (root/<class>/*, class folders named by label or wnid).");
        var limit = Opt<int?>("--limit", "Evaluate the first N images only.");
        AddOptions(weights, labels, output, data, limit);

        SetAction(r =>
        {
            var request = new ImportRequest(r.GetValue(weights)!, r.GetValue(labels)!, r.GetValue(output)!, r.GetValue(data), r.GetValue(limit));
            TorchvisionImport.Run(request, new ConsoleReport());
            return 0;
        });
    }
}
