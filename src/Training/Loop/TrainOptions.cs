using AlexNet.Training.Networks;

namespace AlexNet.Training.Loop;

/// <summary>Everything a run needs; saved in every checkpoint so that <c>resume</c> needs only the run folder.
/// Defaults are the paper's recipe (section 5).</summary>
public sealed record TrainOptions
{
    public string Preset { get; init; } = "paper";
    /// <summary>Image-folder root with train/ and val/ (each &lt;class&gt;/&lt;image&gt;).</summary>
    public string? Data { get; init; }
    /// <summary>Folder with Fashion-MNIST's gzipped IDX files (Debian: /usr/share/datasets/fashion-mnist).</summary>
    public string? FashionMnist { get; init; }
    /// <summary>Training images held out for validation when the data set has no val split (Fashion-MNIST).</summary>
    public int ValidationHoldout { get; init; } = 5000;
    /// <summary>Use only the first N training images (smoke runs).</summary>
    public int? Limit { get; init; }
    public int Epochs { get; init; } = 90;
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 0.01;
    public double Momentum { get; init; } = 0.9;
    public double WeightDecay { get; init; } = 0.0005;
    public LrScheduleKind Schedule { get; init; } = LrScheduleKind.Plateau;
    public int Patience { get; init; } = 2;
    public int MaxLrDrops { get; init; } = 3;
    public int[] StepEpochs { get; init; } = [30, 60, 80];
    public InitScheme Init { get; init; } = InitScheme.Paper;
    public NormalizeMode Normalize { get; init; } = NormalizeMode.Mean;
    public bool PcaLighting { get; init; } = true;
    public bool Flips { get; init; } = true;
    public string Devices { get; init; } = "cpu";
    public int Seed { get; init; } = 42;
    public string Output { get; init; } = "runs/alexnet";
    /// <summary>Stop each epoch after this many batches (smoke tests).</summary>
    public int? LimitBatches { get; init; }
    public int EvalBatchSize { get; init; } = 256;
}

/// <summary>When the learning rate is divided by 10 (<see cref="LrSchedule"/>); on the command line in lower case.</summary>
public enum LrScheduleKind
{
    /// <summary>When validation top-1 error has not improved for Patience epochs, at most MaxLrDrops times.</summary>
    Plateau,
    /// <summary>After each of StepEpochs.</summary>
    Step,
}

/// <summary>What the model's first step does to pixels; on the command line in lower case (mean, meanstd).</summary>
public enum NormalizeMode
{
    /// <summary>Subtract the training-set channel means (the paper).</summary>
    Mean,
    /// <summary>Also divide by the training-set channel std.</summary>
    MeanStd,
    /// <summary>Keep the pretrained model's normalisation (fine-tuning: its features expect it).</summary>
    Pretrained,
}
