using AlexNet.Model;
using AlexNet.Training.Evaluation;

namespace AlexNet.Training.Commands;

/// <summary><c>bench</c>: a <see cref="BenchRequest"/>, then <see cref="Bench.Run"/>.</summary>
public sealed class BenchCommand : VerbCommand
{
    public BenchCommand() : base("bench", "Bare SGD steps on in-memory tensors (the training speed without the data pipeline), or --forward speed.")
    {
        var preset = Opt("--preset", "Network size.", "compact");
        preset.AcceptOnlyFromAmong([.. AlexNetSpec.PresetNames]);
        var batch = Opt("--batch-size", "Images per step.", 128);
        var steps = Opt("--steps", "Timed SGD steps (after 3 warm-up steps).", 20);
        var classes = Opt<int?>("--classes", "Class count (default: 1000 for paper, 10 for compact).");
        var forward = Opt("--forward", "Measure raw forward img/s instead: TorchSharp against ONNX Runtime on the same weights.", false);
        var batches = new Option<int[]>("--batches") { Description = "Batch sizes for --forward.", DefaultValueFactory = _ => [1, 8, 32], AllowMultipleArgumentsPerToken = true };
        AddOptions(preset, batch, steps, classes, forward, batches);

        SetAction(r =>
        {
            var request = new BenchRequest(r.GetValue(preset)!, r.GetValue(batch), r.GetValue(steps), r.GetValue(classes), r.GetValue(forward),
                r.GetValue(batches)!);
            Bench.Run(request, Console.WriteLine);
            return 0;
        });
    }
}
