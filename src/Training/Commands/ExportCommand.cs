using AlexNet.Model;
using AlexNet.Training.Export;
using AlexNet.Training.Reporting;

namespace AlexNet.Training.Commands;

/// <summary><c>export</c>: an <see cref="ExportRequest"/>, then <see cref="ModelExport.Run"/>.</summary>
public sealed class ExportCommand : VerbCommand
{
    public ExportCommand() : base("export", "Write an ONNX model (probabilities and FC7 features) from a checkpoint or fresh weights.")
    {
        var checkpoint = Opt<string>("--checkpoint", "Checkpoint to export (default: fresh weights of --preset).");
        var preset = Opt("--preset", "Preset for fresh weights.", "paper");
        preset.AcceptOnlyFromAmong([.. AlexNetSpec.PresetNames]);
        var classes = Opt("--classes", "Class count for fresh weights.", 1000);
        var labels = Opt<string>("--labels", "Label file (one per line, or wnid<TAB>label) for fresh weights.");
        var seed = Opt("--seed", "Seed for fresh weights.", 42);
        var output = RequiredOpt("--out", "Where to write the .onnx file.");
        var metric = new Option<string[]>("--metric")
        {
            Description = "Extra provenance metric as name=value, e.g. test_top1_error=0.0993 (repeatable).", AllowMultipleArgumentsPerToken = true,
        };
        var domain = Opt<string>("--domain", "What the model knows, in plain words for the people who upload (what its images " +
            "look like; what gets meaningless answers), stored in its provenance and shown by the service. Default: " +
            "Fashion-MNIST's for a run on it, else none.");
        var force = ForceOpt();
        AddOptions(checkpoint, preset, classes, labels, seed, output, metric, domain, force);

        SetAction(r =>
        {
            RefuseOverwrite(r.GetValue(output), r.GetValue(force));
            var request = new ExportRequest(r.GetValue(checkpoint), r.GetValue(preset)!, r.GetValue(classes), r.GetValue(labels),
                r.GetValue(seed), r.GetValue(output)!, r.GetValue(metric), r.GetValue(domain));
            ModelExport.Run(request, new ConsoleReport());
            return 0;
        });
    }
}
