namespace AlexNet.Training.Loop;

/// <summary>
/// How to fine-tune. The defaults are the usual transfer-learning recipe rather than the paper's from-scratch one:
/// the new last layer at lr 0.001 (PyTorch's transfer-learning tutorial), the pretrained layers ten times slower, SGD
/// with momentum 0.9 and weight decay 5e-4, lr / 10 when validation error stops improving, random crops and flips
/// without PCA lighting. The last layer's step grows with the squared norm of the fc7 features it reads, so a net
/// with larger features needs a smaller --lr (a loss far above ln(classes) after the first epoch says so).
/// </summary>
public sealed record FineTuneOptions
{
    /// <summary>What to start from: one of our checkpoints (.ckpt, any preset) or torchvision AlexNet weights saved
    /// by <c>torch.save(model.state_dict(), path)</c>. Told apart by content, not by name.</summary>
    public string From { get; init; } = "";
    /// <summary>Image-folder root with train/ and val/ (each &lt;class&gt;/&lt;image&gt;): its classes are the new ones.</summary>
    public string Data { get; init; } = "";
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 32;
    /// <summary>Learning rate of the new last layer.</summary>
    public double LearningRate { get; init; } = 0.001;
    /// <summary>The pretrained layers learn at LearningRate times this (0.1: ten times slower).</summary>
    public double PretrainedLrScale { get; init; } = 0.1;
    /// <summary>Train the new last layer only; every pretrained weight stays as loaded.</summary>
    public bool Freeze { get; init; }
    public double Momentum { get; init; } = 0.9;
    public double WeightDecay { get; init; } = 0.0005;
    public int Patience { get; init; } = 2;
    public bool Flips { get; init; } = true;
    public string Devices { get; init; } = "cpu";
    public int Seed { get; init; } = 42;
    public string Output { get; init; } = "runs/finetune";
    /// <summary>Use only the first N training images (smoke runs).</summary>
    public int? Limit { get; init; }
    public int? LimitBatches { get; init; }
    public int EvalBatchSize { get; init; } = 64;

    /// <summary>The same settings as trainer options: data loading, the schedule and the checkpoint header use them.</summary>
    public TrainOptions AsTrainOptions(string preset) => new()
    {
        Preset = preset, Data = Data, Limit = Limit, Epochs = Epochs, BatchSize = BatchSize, LearningRate = LearningRate,
        Momentum = Momentum, WeightDecay = WeightDecay, Schedule = LrScheduleKind.Plateau, Patience = Patience, PcaLighting = false,
        Flips = Flips, Devices = Devices, Seed = Seed, Output = Output, LimitBatches = LimitBatches, EvalBatchSize = EvalBatchSize,
        Normalize = NormalizeMode.Pretrained,   // the source model's normalisation is kept: its features expect it
    };
}
