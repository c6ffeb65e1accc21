using System.Text;
using System.Text.Json;
using AlexNet.Model;
using AlexNet.Training.Data;
using AlexNet.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace AlexNet.Training.Training;

/// <summary>Per-epoch numbers, as written to metrics.csv.</summary>
public sealed record EpochMetrics(int Epoch, double Lr, double TrainLoss, double TrainTop1Error, double ValLoss,
    double ValTop1Error, double ValTop5Error, double ImagesPerSecond, double Seconds);

/// <summary>Where a run stands: the next epoch, the learning-rate schedule and the history.</summary>
public sealed record TrainState
{
    public int Epoch { get; init; }
    public double LearningRate { get; init; }
    public double BestTop1Error { get; init; } = double.PositiveInfinity;
    public int BestEpoch { get; init; } = -1;
    public int EpochsSinceImprovement { get; init; }
    public int LrDrops { get; init; }
    public List<EpochMetrics> History { get; init; } = [];
    public double TrainSeconds { get; init; }
}

/// <summary>What a checkpoint holds besides tensors.</summary>
public sealed record CheckpointHeader(TrainOptions Options, TrainState State, AlexNetSpec Spec, Normalization Normalization,
    LabelSet Labels, double[]? PcaValues, double[][]? PcaVectors);

/// <summary>
/// Checkpoint files: a JSON header (options, schedule state, spec, normalisation, labels, PCA), the model's
/// parameters, the optimizer's momentum buffers and torch's RNG state. Written atomically, so a kill mid-write leaves
/// the previous file. `last.ckpt` after every epoch, `best.ckpt` when validation top-1 error improves.
/// </summary>
public static class Checkpoint
{
    const string Magic = "ALEXNET-CKPT-1";
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = false,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    public static void Save(string path, CheckpointHeader header, AlexNetModule model, OptimizerHelper? optimizer)
    {
        AtomicFile.Write(path, stream =>
        {
            using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(JsonSerializer.Serialize(header, Json));
            model.save(w);
            w.Write(optimizer is not null);
            optimizer?.save_state_dict(w);
            var rng = torch.random.get_rng_state();
            var bytes = rng.bytes.ToArray();
            w.Write(bytes.Length);
            w.Write(bytes);
        });
    }

    public static CheckpointHeader ReadHeader(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        return ReadHeader(r, path);
    }

    static CheckpointHeader ReadHeader(BinaryReader r, string path)
    {
        var magic = r.ReadString();
        if (magic != Magic) throw new InvalidDataException($"{path} is not an AlexNet checkpoint (magic '{magic}').");
        return JsonSerializer.Deserialize<CheckpointHeader>(r.ReadString(), Json)
               ?? throw new InvalidDataException($"{path}: empty header.");
    }

    /// <summary>Loads a checkpoint into a new model (on the CPU); restores the optimizer and RNG if given.</summary>
    public static (CheckpointHeader Header, AlexNetModule Model) Load(string path, Func<AlexNetModule, OptimizerHelper>? optimizerFor = null,
        bool restoreRng = false)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        var header = ReadHeader(r, path);
        var model = new AlexNetModule(header.Spec, header.Normalization);
        model.load(r);
        var hasOptimizer = r.ReadBoolean();
        if (optimizerFor is not null)
        {
            var optimizer = optimizerFor(model);
            if (hasOptimizer) optimizer.load_state_dict(r);
        }
        else if (hasOptimizer)
        {
            // Skip the optimizer state by loading it into a throwaway optimizer of the same shape.
            using var tmp = new AlexNetModule(header.Spec, header.Normalization);
            var throwaway = torch.optim.SGD(tmp.parameters(), 0.01, momentum: header.Options.Momentum);
            throwaway.load_state_dict(r);
        }
        var rngBytes = r.ReadBytes(r.ReadInt32());
        if (restoreRng)
        {
            var state = torch.zeros(rngBytes.Length, dtype: ScalarType.Byte);
            rngBytes.CopyTo(state.bytes);
            torch.random.set_rng_state(state);
        }
        return (header, model);
    }

    public static PcaLighting? Pca(CheckpointHeader h) => h.PcaValues is null || h.PcaVectors is null ? null
        : new PcaLighting(h.PcaValues, To2D(h.PcaVectors));

    public static double[][] ToJagged(double[,] m) =>
        Enumerable.Range(0, m.GetLength(0)).Select(r => Enumerable.Range(0, m.GetLength(1)).Select(c => m[r, c]).ToArray()).ToArray();

    static double[,] To2D(double[][] j)
    {
        var m = new double[j.Length, j[0].Length];
        for (var r = 0; r < j.Length; r++) for (var c = 0; c < j[r].Length; c++) m[r, c] = j[r][c];
        return m;
    }
}
