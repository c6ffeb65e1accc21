using System.CommandLine;
using AlexNet.Model;
using AlexNet.Model.Imaging;
using AlexNet.Training.Data;
using AlexNet.Training.Export;
using AlexNet.Training.Model;
using AlexNet.Training.Runtime;
using AlexNet.Training.Training;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;
using TorchSharp;

namespace AlexNet.Training;

/// <summary>The command line: train, resume, evaluate, export, plot, bench, import-torchvision, finetune.</summary>
public static class Cli
{
    static Option<T> Opt<T>(string name, string description, T defaultValue) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue };
    static Option<T?> Opt<T>(string name, string description) => new(name) { Description = description };

    public static RootCommand Build()
    {
        var d = new TrainOptions();
        var root = new RootCommand("alexnet-train: train, evaluate and export the paper's two-tower AlexNet (TorchSharp); " +
                                   "import torchvision's AlexNet weights and fine-tune either on your own classes.");

        // train
        var preset = Opt("--preset", $"Network size: {string.Join(", ", AlexNetSpec.PresetNames)}.", d.Preset);
        preset.AcceptOnlyFromAmong([.. AlexNetSpec.PresetNames]);
        var data = Opt<string>("--data", "Image-folder root holding train/<class>/* and val/<class>/*.");
        var fashion = Opt<string>("--fashion-mnist", "Folder of Fashion-MNIST's gzipped IDX files (Debian: /usr/share/datasets/fashion-mnist).");
        var epochs = Opt("--epochs", "Epochs to train (the paper: about 90).", d.Epochs);
        var batch = Opt("--batch-size", "Images per SGD step (the paper: 128).", d.BatchSize);
        var lr = Opt("--lr", "Initial learning rate (the paper: 0.01).", d.LearningRate);
        var momentum = Opt("--momentum", "SGD momentum (the paper: 0.9).", d.Momentum);
        var wd = Opt("--weight-decay", "L2 weight decay (the paper: 0.0005).", d.WeightDecay);
        var schedule = Opt("--schedule", "plateau: lr / 10 when val error stops improving; step: at --step-epochs.", d.Schedule);
        schedule.AcceptOnlyFromAmong("plateau", "step");
        var patience = Opt("--patience", "Epochs without improvement before lr / 10 (plateau).", d.Patience);
        var maxDrops = Opt("--max-lr-drops", "How many times lr may be divided by 10 (the paper: 3).", d.MaxLrDrops);
        var steps = new Option<int[]>("--step-epochs") { Description = "Epochs after which lr / 10 (step).", DefaultValueFactory = _ => d.StepEpochs, AllowMultipleArgumentsPerToken = true };
        var init = Opt("--init", "Initialisation: Paper (N(0,0.01), biases 1), Caffe (biases 0.1, fc6/7 std 0.005) or Kaiming.", d.Init);
        var normalize = Opt("--normalize", "mean: subtract training-set channel means (the paper); meanstd: also divide by std.", d.Normalize);
        normalize.AcceptOnlyFromAmong("mean", "meanstd");
        var noPca = Opt("--no-pca", "Turn PCA lighting off.", false);
        var noFlip = Opt("--no-flip", "Turn horizontal flips off.", false);
        var devices = Opt("--devices", "Tower placement: cpu, cuda:0, or cuda:0,cuda:1 (tower a, tower b).", d.Devices);
        var seed = Opt("--seed", "Seed of every random choice (init, data order, augmentation, dropout).", d.Seed);
        var output = Opt("--out", "Run folder: checkpoints, metrics.csv, pictures.", d.Output);
        var limit = Opt<int?>("--limit", "Use only the first N training images.");
        var limitBatches = Opt<int?>("--limit-batches", "Stop each epoch after N batches (smoke runs).");
        var holdout = Opt("--val-holdout", "Training images held out for validation (Fashion-MNIST has no val split).", d.ValidationHoldout);
        var exportTo = Opt<string>("--export", "After training, export best.ckpt to this .onnx path.");
        var train = new Command("train", "Train from scratch with the paper's recipe.")
        {
            preset, data, fashion, epochs, batch, lr, momentum, wd, schedule, patience, maxDrops, steps, init, normalize,
            noPca, noFlip, devices, seed, output, limit, limitBatches, holdout, exportTo,
        };
        train.SetAction(r =>
        {
            var o = new TrainOptions
            {
                Preset = r.GetValue(preset)!, Data = r.GetValue(data), FashionMnist = r.GetValue(fashion), Epochs = r.GetValue(epochs),
                BatchSize = r.GetValue(batch), LearningRate = r.GetValue(lr), Momentum = r.GetValue(momentum), WeightDecay = r.GetValue(wd),
                Schedule = r.GetValue(schedule)!, Patience = r.GetValue(patience), MaxLrDrops = r.GetValue(maxDrops),
                StepEpochs = r.GetValue(steps)!, Init = r.GetValue(init), Normalize = r.GetValue(normalize)!, PcaLighting = !r.GetValue(noPca),
                Flips = !r.GetValue(noFlip), Devices = r.GetValue(devices)!, Seed = r.GetValue(seed), Output = r.GetValue(output)!,
                Limit = r.GetValue(limit), LimitBatches = r.GetValue(limitBatches), ValidationHoldout = r.GetValue(holdout),
            };
            var report = new ConsoleReport();
            TorchRuntime.CheckConvolutions();   // refuse to train on wrong kernels (docs/torchsharp.md)
            var state = report.Run(() => new Trainer(report).Train(o));
            Finish(report, o.Output, state);
            if (r.GetValue(exportTo) is { } path) ExportCheckpoint(Path.Combine(o.Output, "best.ckpt"), path, report);
            return 0;
        });
        root.Subcommands.Add(train);

        // resume
        var run = new Option<string>("--run") { Description = "Run folder to continue (its last.ckpt).", Required = true };
        var moreEpochs = Opt<int?>("--epochs", "New total number of epochs (default: the original).");
        var resumeLr = Opt<double?>("--lr", "Change the learning rate from here on (default: the schedule's).");
        var resumeSteps = new Option<int[]?>("--step-epochs") { Description = "Switch to a step schedule with these epochs.", AllowMultipleArgumentsPerToken = true };
        var resume = new Command("resume", "Continue a run exactly where it stopped (optionally with a new length or schedule).")
        {
            run, moreEpochs, resumeLr, resumeSteps,
        };
        resume.SetAction(r =>
        {
            var report = new ConsoleReport();
            var dir = r.GetValue(run)!;
            TorchRuntime.CheckConvolutions();   // refuse to train on wrong kernels (docs/torchsharp.md)
            var state = report.Run(() => new Trainer(report).Resume(dir, r.GetValue(moreEpochs), default, r.GetValue(resumeLr), r.GetValue(resumeSteps)));
            Finish(report, dir, state);
            return 0;
        });
        root.Subcommands.Add(resume);

        // evaluate
        var ckpt = Opt<string>("--checkpoint", "A .ckpt file to evaluate with TorchSharp.");
        var model = Opt<string>("--model", "An exported .onnx file to evaluate with ONNX Runtime.");
        var evalData = Opt<string>("--data", "Image folder root/<class>/* to evaluate on (e.g. my-data/val).");
        var evalFashion = Opt<string>("--fashion-mnist", "Fashion-MNIST folder: evaluates on its 10,000 test images.");
        var tenCrop = Opt("--ten-crop", "Also report the paper's 10-crop error (corners, centre and mirrors, softmax averaged).", false);
        var evalLimit = Opt<int?>("--limit", "Evaluate the first N images only.");
        var evaluate = new Command("evaluate", "Top-1 and top-5 error, centre crop and 10 crops.") { ckpt, model, evalData, evalFashion, tenCrop, evalLimit };
        evaluate.SetAction(r =>
        {
            var results = EvaluateCommand(r.GetValue(ckpt), r.GetValue(model), r.GetValue(evalData), r.GetValue(evalFashion),
                r.GetValue(tenCrop), r.GetValue(evalLimit));
            foreach (var e in results)
                Console.WriteLine($"{e.Crops,-8} images {e.Images}  top-1 error {100 * e.Top1Error:F2}%  top-5 error {100 * e.Top5Error:F2}%  loss {e.Loss:F4}");
            return 0;
        });
        root.Subcommands.Add(evaluate);

        // export
        var fromCkpt = Opt<string>("--checkpoint", "Checkpoint to export (default: fresh weights of --preset).");
        var exportPreset = Opt("--preset", "Preset for fresh weights.", "paper");
        exportPreset.AcceptOnlyFromAmong([.. AlexNetSpec.PresetNames]);
        var classes = Opt("--classes", "Class count for fresh weights.", 1000);
        var labels = Opt<string>("--labels", "Label file (one per line, or wnid<TAB>label) for fresh weights.");
        var exportSeed = Opt("--seed", "Seed for fresh weights.", 42);
        var metric = new Option<string[]>("--metric")
        {
            Description = "Extra provenance metric as name=value, e.g. test_top1_error=0.0993 (repeatable).", AllowMultipleArgumentsPerToken = true,
        };
        var outPath = new Option<string>("--out") { Description = "Where to write the .onnx file.", Required = true };
        var export = new Command("export", "Write an ONNX model (probabilities and FC7 features) from a checkpoint or fresh weights.")
        {
            fromCkpt, exportPreset, classes, labels, exportSeed, outPath, metric,
        };
        export.SetAction(r =>
        {
            var report = new ConsoleReport();
            if (r.GetValue(fromCkpt) is { } c) ExportCheckpoint(c, r.GetValue(outPath)!, report, ParseMetrics(r.GetValue(metric)));
            else ExportFresh(r.GetValue(exportPreset)!, r.GetValue(classes), r.GetValue(labels), r.GetValue(exportSeed), r.GetValue(outPath)!, report);
            return 0;
        });
        root.Subcommands.Add(export);

        // plot
        var plotRun = new Option<string>("--run") { Description = "Run folder (uses last.ckpt).", Required = true };
        var plot = new Command("plot", "Draw curves.png (loss and error per epoch) and conv1.png (the conv1 kernels, tower a over tower b).") { plotRun };
        plot.SetAction(r =>
        {
            var dir = r.GetValue(plotRun)!;
            DrawPictures(dir, new ConsoleReport());
            return 0;
        });
        root.Subcommands.Add(plot);

        // bench
        var benchPreset = Opt("--preset", "Network size.", "compact");
        benchPreset.AcceptOnlyFromAmong([.. AlexNetSpec.PresetNames]);
        var benchBatch = Opt("--batch-size", "Images per step.", 128);
        var benchSteps = Opt("--steps", "Timed SGD steps (after 3 warm-up steps).", 20);
        var benchClasses = Opt<int?>("--classes", "Class count (default: 1000 for paper, 10 for compact).");
        var forward = Opt("--forward", "Measure raw forward img/s instead: TorchSharp against ONNX Runtime on the same weights.", false);
        var forwardBatches = new Option<int[]>("--batches") { Description = "Batch sizes for --forward.", DefaultValueFactory = _ => [1, 8, 32], AllowMultipleArgumentsPerToken = true };
        var bench = new Command("bench", "Bare SGD steps on in-memory tensors (the training speed without the data pipeline), or --forward speed.")
        {
            benchPreset, benchBatch, benchSteps, benchClasses, forward, forwardBatches,
        };
        bench.SetAction(r =>
        {
            if (r.GetValue(forward))
            {
                ForwardBench.Run(BenchSpec(r.GetValue(benchPreset)!, r.GetValue(benchClasses)), r.GetValue(forwardBatches)!, 5, Console.WriteLine);
                return 0;
            }
            var ips = Bench.TrainingStep(BenchSpec(r.GetValue(benchPreset)!, r.GetValue(benchClasses)), r.GetValue(benchBatch), r.GetValue(benchSteps));
            Console.WriteLine($"bare forward/backward/step: {ips:F1} img/s ({r.GetValue(benchPreset)}, batch {r.GetValue(benchBatch)}, {torch.get_num_threads()} threads)");
            return 0;
        });
        root.Subcommands.Add(bench);
        root.Subcommands.Add(ImportTorchvisionCommand());
        root.Subcommands.Add(FineTuneCommand());
        return root;
    }

    static Command ImportTorchvisionCommand()
    {
        var weights = new Option<string>("--weights")
        {
            Description = "torchvision AlexNet weights saved by torch.save(model.state_dict(), path) (PyTorch 1.6+ zip format).",
            Required = true,
        };
        var labels = new Option<string>("--labels")
        {
            Description = "Class names in output order: one per line, or wnid<TAB>label (e.g. imagenet1k-synsets.txt for ImageNet weights).",
            Required = true,
        };
        var outPath = new Option<string>("--out") { Description = "Where to write the .onnx file (our contract: image 0..255 in, probabilities and features out).", Required = true };
        var data = Opt<string>("--data", "Also evaluate on this image folder (root/<class>/*, class folders named by label or wnid).");
        var limit = Opt<int?>("--limit", "Evaluate the first N images only.");
        var command = new Command("import-torchvision", "Convert torchvision AlexNet weights (.pth) to an ONNX model the API serves.")
        {
            weights, labels, outPath, data, limit,
        };
        command.SetAction(r =>
        {
            var report = new ConsoleReport();
            ImportTorchvision(r.GetValue(weights)!, r.GetValue(labels)!, r.GetValue(outPath)!, r.GetValue(data), r.GetValue(limit), report);
            return 0;
        });
        return command;
    }

    /// <summary>Loads a torchvision state dict, optionally evaluates it with TorchSharp, and exports it.</summary>
    public static string ImportTorchvision(string weights, string labelsPath, string path, string? folder, int? limit, ITrainingReport report)
    {
        var labels = LabelSet.Load(labelsPath);
        using var model = TorchvisionWeights.LoadModel(weights);
        if (labels.Count != model.Spec.Classes)
            throw new ArgumentException($"{labelsPath} has {labels.Count} labels but {weights} has {model.Spec.Classes} classes (rows of classifier.6.weight).");
        report.Info($"{weights}: torchvision AlexNet, {model.parameters().Sum(p => p.numel()):N0} parameters, {model.Spec.Classes} classes");
        var metrics = new Dictionary<string, double>();
        if (folder is not null)
        {
            var e = EvaluateTorchvision(model, labels, folder, limit);
            report.Info($"{folder}: centre crop, images {e.Images}  top-1 error {100 * e.Top1Error:F2}%  top-5 error {100 * e.Top5Error:F2}%  loss {e.Loss:F4}");
            (metrics["val_top1_error"], metrics["val_top5_error"]) = (e.Top1Error, e.Top5Error);
        }
        var provenance = new Provenance
        {
            Dataset = folder is null ? "unknown (imported weights)" : $"evaluated on {folder}",
            Init = $"torchvision AlexNet weights {Path.GetFileName(weights)}",
            Command = Environment.CommandLine,
            Metrics = metrics,
            Note = "imported from a PyTorch state dict; torchvision's one-tower variant (61.1 M parameters with 1000 classes), " +
                   "not the paper's two-tower net",
        };
        TorchvisionExporter.Export(model, labels, provenance, path);
        var full = Path.GetFullPath(path);
        report.Info($"wrote {full} ({new FileInfo(full).Length / 1e6:F1} MB)");
        Console.WriteLine(full);
        return full;
    }

    /// <summary>Centre-crop top-1/top-5 of a torchvision model on root/&lt;class&gt;/*, folders named by label or by wnid.</summary>
    public static EvalResult EvaluateTorchvision(TorchvisionAlexNet model, LabelSet labels, string folder, int? limit)
    {
        var prep = new ImagePreprocessor(model.Spec.ResizeSize, model.Spec.InputSize);
        var byWnid = labels.Synsets is { } syn && syn.Any(s => Directory.Exists(Path.Combine(folder, s)));
        var set = ImageSet.FromFolder(folder, prep, (f, why) => Console.Error.WriteLine($"skipped {f}: {why}"),
            byWnid ? new LabelSet(labels.Synsets!) : labels);
        if (limit is { } l && l < set.Count) set = set.Subset(Enumerable.Range(0, l).ToArray(), "limit");
        return Evaluator.Evaluate(new ModuleScorer(model, model.Spec.InputSize, model.Spec.Classes), set, prep, tenCrop: false);
    }

    static Command FineTuneCommand()
    {
        var d = new FineTuneOptions();
        var from = new Option<string>("--from")
        {
            Description = "Pretrained model: a checkpoint of ours (.ckpt) or torchvision AlexNet weights (.pth state dict).",
            Required = true,
        };
        var data = new Option<string>("--data") { Description = "Image-folder root holding train/<class>/* and val/<class>/*: the new classes.", Required = true };
        var epochs = Opt("--epochs", "Epochs to train.", d.Epochs);
        var batch = Opt("--batch-size", "Images per SGD step.", d.BatchSize);
        var lr = Opt("--lr", "Learning rate of the new last layer (lower it if the loss climbs far above ln(classes)).", d.LearningRate);
        var scale = Opt("--pretrained-lr-scale", "The pretrained layers learn at lr times this (0.1: ten times slower).", d.PretrainedLrScale);
        var freeze = Opt("--freeze", "Train the new last layer only (fc8 / classifier.6); the pretrained layers stay as loaded.", d.Freeze);
        var momentum = Opt("--momentum", "SGD momentum.", d.Momentum);
        var wd = Opt("--weight-decay", "L2 weight decay.", d.WeightDecay);
        var patience = Opt("--patience", "Epochs without improvement before lr / 10.", d.Patience);
        var noFlip = Opt("--no-flip", "Turn horizontal flips off.", false);
        var devices = Opt("--devices", "cpu, cuda:0, or cuda:0,cuda:1 (two-tower nets only).", d.Devices);
        var seed = Opt("--seed", "Seed of the new layer, data order, augmentation and dropout.", d.Seed);
        var output = Opt("--out", "Run folder: best.ckpt or best.pth (+ labels.txt), metrics.csv.", d.Output);
        var limit = Opt<int?>("--limit", "Use only the first N training images.");
        var limitBatches = Opt<int?>("--limit-batches", "Stop each epoch after N batches (smoke runs).");
        var exportTo = Opt<string>("--export", "After training, export the best weights to this .onnx path.");
        var command = new Command("finetune",
            "Replace the last layer for the classes of --data and train: pretrained layers 10x slower, or frozen with --freeze.")
        {
            from, data, epochs, batch, lr, scale, freeze, momentum, wd, patience, noFlip, devices, seed, output, limit, limitBatches, exportTo,
        };
        command.SetAction(r =>
        {
            var o = new FineTuneOptions
            {
                From = r.GetValue(from)!, Data = r.GetValue(data)!, Epochs = r.GetValue(epochs), BatchSize = r.GetValue(batch),
                LearningRate = r.GetValue(lr), PretrainedLrScale = r.GetValue(scale), Freeze = r.GetValue(freeze), Momentum = r.GetValue(momentum),
                WeightDecay = r.GetValue(wd), Patience = r.GetValue(patience), Flips = !r.GetValue(noFlip), Devices = r.GetValue(devices)!,
                Seed = r.GetValue(seed), Output = r.GetValue(output)!, Limit = r.GetValue(limit), LimitBatches = r.GetValue(limitBatches),
            };
            var report = new ConsoleReport();
            TorchRuntime.CheckConvolutions();   // refuse to train on wrong kernels (docs/torchsharp.md)
            var result = report.Run(() => new FineTuner(report).Run(o));
            if (r.GetValue(exportTo) is { } path)
            {
                FineTuner.Export(o, result, path);
                var full = Path.GetFullPath(path);
                report.Info($"wrote {full} ({new FileInfo(full).Length / 1e6:F1} MB)");
                Console.WriteLine(full);
            }
            return 0;
        });
        return command;
    }

    static AlexNetSpec BenchSpec(string preset, int? classes) => AlexNetSpec.FromPreset(preset, classes ?? (preset == "paper" ? 1000 : 10));

    static void Finish(ConsoleReport report, string dir, TrainState state)
    {
        report.Info($"best val top-1 error {100 * state.BestTop1Error:F2}% at epoch {state.BestEpoch + 1}; checkpoints in {Path.GetFullPath(dir)}");
        DrawPictures(dir, report);
    }

    public static void DrawPictures(string dir, ITrainingReport report)
    {
        var (header, model) = Checkpoint.Load(Path.Combine(dir, "last.ckpt"));
        using (model)
        {
            Pictures.Curves(header.State.History, Path.Combine(dir, "curves.png"), $"AlexNet ({header.Spec.Preset})");
            Pictures.Conv1Grid(model, Path.Combine(dir, "conv1.png"));
        }
        report.Info($"wrote {Path.GetFullPath(Path.Combine(dir, "curves.png"))} and conv1.png");
    }

    static Dictionary<string, double> ParseMetrics(string[]? pairs) => (pairs ?? []).Select(p =>
    {
        var parts = p.Split('=', 2);
        if (parts.Length != 2 || !double.TryParse(parts[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v))
            throw new ArgumentException($"--metric takes name=value with a number, not '{p}'.");
        return (parts[0], v);
    }).ToDictionary(x => x.Item1, x => x.v);

    public static string ExportCheckpoint(string checkpoint, string path, ITrainingReport report, Dictionary<string, double>? extraMetrics = null)
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
                Command = "alexnet-train " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
                Metrics = new Dictionary<string, double>(
                    (best is null ? [] : new Dictionary<string, double> { ["val_top1_error"] = best.ValTop1Error, ["val_top5_error"] = best.ValTop5Error })
                    .Concat(extraMetrics ?? [])),
                Note = $"checkpoint {Path.GetFileName(checkpoint)}, trained {header.State.TrainSeconds / 60:F0} min",
            };
            OnnxExporter.Export(model, header.Labels, provenance, path);
        }
        var full = Path.GetFullPath(path);
        report.Info($"wrote {full} ({new FileInfo(full).Length / 1e6:F1} MB)");
        Console.WriteLine(full);
        return full;
    }

    static void ExportFresh(string preset, int classes, string? labelsPath, int seed, string path, ITrainingReport report)
    {
        var labels = labelsPath is null ? new LabelSet(Enumerable.Range(0, classes).Select(i => $"class {i}").ToArray()) : LabelSet.Load(labelsPath);
        if (labels.Count != classes && labelsPath is not null) classes = labels.Count;
        random.manual_seed(seed);
        using var model = new AlexNetModule(AlexNetSpec.FromPreset(preset, classes), Normalization.ImageNetMeanOnly);
        OnnxExporter.Export(model, labels, new Provenance
        {
            Dataset = "none (fresh weights)", Init = "Paper", Command = "alexnet-train " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
        }, path);
        var full = Path.GetFullPath(path);
        report.Info($"wrote {full} ({new FileInfo(full).Length / 1e6:F1} MB)");
        Console.WriteLine(full);
    }

    public static List<EvalResult> EvaluateCommand(string? checkpoint, string? onnx, string? folder, string? fashion, bool tenCrop, int? limit)
    {
        if ((checkpoint is null) == (onnx is null)) throw new ArgumentException("Give exactly one of --checkpoint or --model.");
        IScorer scorer;
        AlexNetSpec spec;
        LabelSet labels;
        IDisposable owner;
        if (checkpoint is not null)
        {
            var (header, model) = Checkpoint.Load(checkpoint);
            (scorer, spec, labels, owner) = (new TorchScorer(model), header.Spec, header.Labels, model);
        }
        else
        {
            var session = new InferenceSession(onnx!);
            var meta = session.ModelMetadata.CustomMetadataMap;
            spec = System.Text.Json.JsonSerializer.Deserialize<AlexNetSpec>(meta[OnnxContract.Keys.Spec])!;
            labels = new LabelSet(System.Text.Json.JsonSerializer.Deserialize<string[]>(meta[OnnxContract.Keys.Labels])!);
            (scorer, owner) = (new OnnxScorer(session, spec.InputSize), session);
        }
        using (owner)
        {
            var prep = new ImagePreprocessor(spec);
            ImageSet set;
            if (fashion is not null)
                set = ImageSet.FromIdx(Path.Combine(fashion, "t10k-images-idx3-ubyte.gz"), Path.Combine(fashion, "t10k-labels-idx1-ubyte.gz"), prep, labels, limit);
            else if (folder is not null)
            {
                set = ImageSet.FromFolder(folder, prep, (f, why) => Console.Error.WriteLine($"skipped {f}: {why}"), labels);
                if (limit is { } l && l < set.Count) set = set.Subset(Enumerable.Range(0, l).ToArray(), "limit");
            }
            else throw new ArgumentException("Name the data: --data <folder of class folders> or --fashion-mnist <folder>.");
            var results = new List<EvalResult> { Evaluator.Evaluate(scorer, set, prep, tenCrop: false) };
            if (tenCrop) results.Add(Evaluator.Evaluate(scorer, set, prep, tenCrop: true));
            return results;
        }
    }
}
