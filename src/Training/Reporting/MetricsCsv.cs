using AlexNet.Model;

namespace AlexNet.Training.Reporting;

/// <summary>Per-epoch numbers, as written to metrics.csv.</summary>
public sealed record EpochMetrics(int Epoch, double Lr, double TrainLoss, double TrainTop1Error, double ValLoss,
    double ValTop1Error, double ValTop5Error, double ImagesPerSecond, double Seconds);

/// <summary>metrics.csv in the run folder: one row per epoch, rewritten whole (atomically) after every epoch.</summary>
public static class MetricsCsv
{
    public const string HeaderLine = "epoch,lr,train_loss,train_top1_error,val_loss,val_top1_error,val_top5_error,img_per_s,seconds";

    public static void Write(string path, IEnumerable<EpochMetrics> history)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        var lines = history.Select(m => string.Join(',', new object[]
        {
            m.Epoch, m.Lr, m.TrainLoss, m.TrainTop1Error, m.ValLoss, m.ValTop1Error, m.ValTop5Error, m.ImagesPerSecond, m.Seconds,
        }.Select(v => Convert.ToString(v, inv))));
        AtomicFile.Write(path, s =>
        {
            using var w = new StreamWriter(s, leaveOpen: true);
            w.WriteLine(HeaderLine);
            foreach (var l in lines) w.WriteLine(l);
        });
    }
}
