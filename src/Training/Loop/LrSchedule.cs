namespace AlexNet.Training.Loop;

/// <summary>
/// The paper's schedule: lr divided by 10 when the validation error stops improving, at most MaxLrDrops times
/// (three in the paper); <see cref="LrScheduleKind.Step"/> divides at fixed epochs instead. A pure function of the
/// state, so resume is exact.
/// </summary>
public static class LrSchedule
{
    public static TrainState AfterEpoch(TrainOptions o, TrainState s, int epoch, double valTop1Error)
    {
        var improved = valTop1Error < s.BestTop1Error - 1e-9;
        var next = s with
        {
            Epoch = epoch + 1,
            BestTop1Error = improved ? valTop1Error : s.BestTop1Error,
            BestEpoch = improved ? epoch : s.BestEpoch,
            EpochsSinceImprovement = improved ? 0 : s.EpochsSinceImprovement + 1,
        };
        if (o.Schedule == LrScheduleKind.Step)
            return o.StepEpochs.Contains(epoch + 1) ? next with { LearningRate = next.LearningRate / 10, LrDrops = next.LrDrops + 1 } : next;
        if (next.EpochsSinceImprovement >= o.Patience && next.LrDrops < o.MaxLrDrops)
            return next with { LearningRate = next.LearningRate / 10, LrDrops = next.LrDrops + 1, EpochsSinceImprovement = 0 };
        return next;
    }
}
