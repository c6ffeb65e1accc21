using System.Globalization;
using AlexNet.Model;
using AlexNet.Model.OutOfDomain;
using AlexNet.Training.Loop;
using AlexNet.Training.Networks;
using AlexNet.Training.Reporting;
using TorchSharp;

namespace AlexNet.Training.Export;

/// <summary>
/// What the export command writes: the checkpoint's weights, or with no checkpoint fresh weights of
/// <paramref name="Preset"/> (<paramref name="Classes"/> classes, or as many as <paramref name="Labels"/> names, seeded by
/// <paramref name="Seed"/>). <paramref name="Metrics"/> are extra name=value provenance metrics.
/// </summary>
public sealed record ExportRequest(string? Checkpoint, string Preset, int Classes, string? Labels, int Seed, string Out, string[]? Metrics,
    string? Domain = null);

/// <summary>ONNX files from checkpoints, fresh weights and fine-tuned best weights, with their provenance.</summary>
public static class ModelExport
{
    /// <summary>Does the export command's work.</summary>
    public static string Run(ExportRequest q, ITrainingReport report) => q.Checkpoint is { } c
        ? FromCheckpoint(c, q.Out, report, ParseMetrics(q.Metrics), q.Domain)
        : Fresh(q.Preset, q.Classes, q.Labels, q.Seed, q.Out, report);

    /// <param name="domain">What the model knows, in plain words (<see cref="Provenance.Domain"/>); null: Fashion-MNIST's
    /// own words for a run on it, else none.</param>
    public static string FromCheckpoint(string checkpoint, string path, ITrainingReport report, Dictionary<string, double>? extraMetrics = null,
        string? domain = null)
    {
        var (header, model) = Checkpoint.Load(checkpoint);
        using (model)
        {
            var best = header.State.History.FirstOrDefault(h => h.Epoch == header.State.BestEpoch + 1);
            var provenance = new Provenance
            {
                Dataset = header.Options.FashionMnist is not null ? "Fashion-MNIST" : header.Options.Data ?? "",
                Epochs = header.State.Epoch,
                Init = header.Options.Init.ToString(),
                Command = CommandLine,
                Metrics = new Dictionary<string, double>(
                    (best is null ? [] : new Dictionary<string, double> { ["val_top1_error"] = best.ValTop1Error, ["val_top5_error"] = best.ValTop5Error })
                    .Concat(extraMetrics ?? [])),
                Note = $"checkpoint {Path.GetFileName(checkpoint)}, trained {header.State.TrainSeconds / 60:F0} min",
                Limit = header.Options.Limit,
                Domain = domain ?? (header.Options.FashionMnist is not null ? LabelSet.FashionMnistDomain : null),
            };
            OnnxExporter.Export(model, header.Labels, provenance, path);
        }
        AddDomainStatistics(path, header.Options, report);
        return Wrote(path, report);
    }

    /// <summary>
    /// The out-of-domain statistics of a freshly exported file (<see cref="DomainFit"/>), from the run's own held-out
    /// images: Fashion-MNIST's split by the run's seed and holdout, or its folder's val/. A run without data on this
    /// machine (a dummy run, data since moved) exports without them and says how to add them later.
    /// </summary>
    static void AddDomainStatistics(string path, TrainOptions o, ITrainingReport report)
    {
        var available = o.FashionMnist is { } f ? File.Exists(Path.Combine(f, "train-images-idx3-ubyte.gz"))
            : o.Data is { } d && Directory.Exists(Path.Combine(d, "val"));
        if (!available)
        {
            report.Warn($"no out-of-domain statistics: the run's held-out images are not here ({o.FashionMnist ?? o.Data ?? "dummy data"}); " +
                $"add them later with: alexnet-train fit-ood --model {path} --fashion-mnist <folder> | --data <root>");
            return;
        }
        var spec = DomainFit.SpecOf(File.ReadAllBytes(path), path);
        var (held, name) = DomainFit.HeldOut(o.FashionMnist, o.Data, o.ValidationHoldout, o.Seed, o.Limit, new Model.Imaging.ImagePreprocessor(spec));
        DomainFit.Apply(File.ReadAllBytes(path), path, held, name, DomainStatistics.DefaultPercentile, report);
    }

    static string Fresh(string preset, int classes, string? labelsPath, int seed, string path, ITrainingReport report)
    {
        var labels = labelsPath is null ? new LabelSet(Enumerable.Range(0, classes).Select(i => $"class {i}").ToArray()) : LabelSet.Load(labelsPath);
        if (labels.Count != classes && labelsPath is not null) classes = labels.Count;
        torch.random.manual_seed(seed);
        using var model = new AlexNetModule(AlexNetSpec.FromPreset(preset, classes), Normalization.ImageNetMeanOnly);
        OnnxExporter.Export(model, labels, new Provenance { Dataset = "none (fresh weights)", Init = "Paper", Command = CommandLine }, path);
        return Wrote(path, report);
    }

    /// <summary>Exports a fine-tuning run's best weights (best.ckpt or best.pth) as ONNX with our contract.</summary>
    public static void ExportBest(string bestPath, LabelSet labels, Provenance provenance, string onnxPath)
    {
        if (PretrainedNet.IsZip(bestPath))
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

    /// <summary>Reports where <paramref name="path"/> was written and its size, prints the full path alone on stdout (the
    /// last line, for scripts) and returns it.</summary>
    public static string Wrote(string path, ITrainingReport report)
    {
        var full = Path.GetFullPath(path);
        report.Info($"wrote {full} ({new FileInfo(full).Length / 1e6:F1} MB)");
        Console.WriteLine(full);
        return full;
    }

    static string CommandLine => "alexnet-train " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));

    static Dictionary<string, double> ParseMetrics(string[]? pairs) => (pairs ?? []).Select(p =>
    {
        var parts = p.Split('=', 2);
        if (parts.Length != 2 || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
            throw new ArgumentException($"--metric takes name=value with a number, not '{p}'.");
        return (parts[0], v);
    }).ToDictionary(x => x.Item1, x => x.v);
}
