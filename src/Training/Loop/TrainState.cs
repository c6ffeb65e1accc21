using AlexNet.Training.Reporting;

namespace AlexNet.Training.Loop;

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
