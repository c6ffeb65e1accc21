using System.Text;
using System.Text.Json;
using AlexNet.Model;
using AlexNet.Training.Data;
using AlexNet.Training.Networks;
using TorchSharp;
using TorchSharp.Modules;

namespace AlexNet.Training.Loop;

/// <summary>What a checkpoint holds besides tensors.</summary>
public sealed record CheckpointHeader(TrainOptions Options, TrainState State, AlexNetSpec Spec, Normalization Normalization,
    LabelSet Labels, double[]? PcaValues, double[][]? PcaVectors);

/// <summary>
/// Checkpoint files, written atomically (a kill mid-write leaves the previous file): `last.ckpt` after every epoch,
/// `best.ckpt` when validation top-1 error improves. Version 2, in order:
/// <list type="number">
/// <item>the magic <c>ALEXNET-CKPT-2</c> and the JSON header (options, schedule state, spec, normalisation, labels, PCA),
/// each a BinaryWriter string;</item>
/// <item>the model's parameters (TorchSharp's Module.save);</item>
/// <item>the optimizer section: its length in bytes (int64; 0 when there is none), then the momentum buffers
/// (TorchSharp's save_state_dict);</item>
/// <item>torch's RNG state: its length (int32) and bytes. Nothing reads it back today: resume reseeds each epoch
/// (<see cref="Seeds"/>).</item>
/// </list>
/// Weights and header are read without touching the optimizer section. Version 1 files (<c>ALEXNET-CKPT-1</c>: a bool
/// instead of the length) still load; their optimizer state is read only when resuming.
/// </summary>
public static class Checkpoint
{
    const string Magic = "ALEXNET-CKPT-2", MagicV1 = "ALEXNET-CKPT-1";
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = false,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },   // reads names in any case
    };

    public static void Save(string path, CheckpointHeader header, AlexNetModule model, OptimizerHelper? optimizer)
    {
        AtomicFile.Write(path, stream =>
        {
            using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(JsonSerializer.Serialize(header, Json));
            model.save(w);
            w.Flush();
            var lengthAt = stream.Position;
            w.Write(0L);                                       // the optimizer section's length, filled in below
            if (optimizer is not null)
            {
                optimizer.save_state_dict(w);
                w.Flush();
                var end = stream.Position;
                stream.Position = lengthAt;
                w.Write(end - lengthAt - sizeof(long));
                w.Flush();
                stream.Position = end;
            }
            var rng = torch.random.get_rng_state();
            var bytes = rng.bytes.ToArray();
            w.Write(bytes.Length);
            w.Write(bytes);
        });
    }

    public static CheckpointHeader ReadHeader(string path)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        return ReadHeader(r, path, out _);
    }

    static CheckpointHeader ReadHeader(BinaryReader r, string path, out int version)
    {
        var magic = r.ReadString();
        version = magic switch
        {
            Magic => 2,
            MagicV1 => 1,
            _ => throw new InvalidDataException($"{path} is not an AlexNet checkpoint (magic '{magic}')."),
        };
        return JsonSerializer.Deserialize<CheckpointHeader>(r.ReadString(), Json)
               ?? throw new InvalidDataException($"{path}: empty header.");
    }

    /// <summary>
    /// Loads a checkpoint into a new model (on the CPU). With <paramref name="optimizerFor"/> (resume) the optimizer it
    /// returns for the model gets the saved momentum buffers; without it the optimizer section is not read.
    /// </summary>
    public static (CheckpointHeader Header, AlexNetModule Model) Load(string path, Func<AlexNetModule, OptimizerHelper>? optimizerFor = null)
    {
        using var r = new BinaryReader(File.OpenRead(path));
        var header = ReadHeader(r, path, out var version);
        var model = new AlexNetModule(header.Spec, header.Normalization);
        model.load(r);
        if (optimizerFor is null) return (header, model);
        var optimizer = optimizerFor(model);
        if (version == 1)
        {
            if (r.ReadBoolean()) optimizer.load_state_dict(r);
            return (header, model);
        }
        var length = r.ReadInt64();
        var start = r.BaseStream.Position;
        if (length > 0) optimizer.load_state_dict(r);
        if (r.BaseStream.Position != start + length)
            throw new InvalidDataException($"{path}: the optimizer section holds {length} bytes but its state took " +
                                           $"{r.BaseStream.Position - start} (saved by another optimizer?).");
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
