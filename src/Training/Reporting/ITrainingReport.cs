namespace AlexNet.Training.Reporting;

/// <summary>Receives progress; <see cref="ConsoleReport"/> shows bars on a terminal and plain lines otherwise.</summary>
public interface ITrainingReport
{
    void Info(string line);
    void Warn(string line);
    void Batch(int epoch, int batch, int batches, double loss, double top1Error, double imagesPerSecond);
    void Epoch(EpochMetrics metrics);
    /// <summary>Progress of work that is not a training epoch (evaluate): <paramref name="task"/> names it, <paramref name="done"/>
    /// of <paramref name="total"/> images, <paramref name="text"/> the running figures.</summary>
    void Progress(string task, int done, int total, string text) { }
}
