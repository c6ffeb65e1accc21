using System.Diagnostics;
using Spectre.Console;

namespace AlexNet.Training.Reporting;

/// <summary>Progress bars (loss, error, img/s, ETA) on a terminal; plain timestamped lines when output is redirected.</summary>
public sealed class ConsoleReport : ITrainingReport
{
    readonly Stopwatch _lastLine = Stopwatch.StartNew();
    ProgressContext? _progress;
    ProgressTask? _task;
    int _taskEpoch = -1;

    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="work"/> under a live progress display when on a terminal.</summary>
    public T Run<T>(Func<T> work)
    {
        if (!Interactive) return work();
        return AnsiConsole.Progress().AutoClear(false).HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => { _progress = ctx; return work(); });
    }

    public void Info(string line) => Write(line);
    public void Warn(string line)
    {
        if (Interactive) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(line)}[/]");
        else Console.Error.WriteLine($"{DateTime.Now:HH:mm:ss} {line}");
    }

    public void Batch(int epoch, int batch, int batches, double loss, double top1Error, double imagesPerSecond)
    {
        var text = $"epoch {epoch + 1} loss {loss:F4} top-1 err {100 * top1Error:F2}% {imagesPerSecond:F0} img/s";
        if (_progress is not null)
        {
            if (_taskEpoch != epoch) { _task = _progress.AddTask(text, maxValue: batches); _taskEpoch = epoch; }
            _task!.Description = Markup.Escape(text);
            _task.Value = batch;
            return;
        }
        if (batch == batches || _lastLine.Elapsed.TotalSeconds >= 30)
        {
            Write($"{text} [{batch}/{batches}]");
            _lastLine.Restart();
        }
    }

    public void Epoch(EpochMetrics m) => Write(
        $"epoch {m.Epoch} done: lr {m.Lr:G3} train loss {m.TrainLoss:F4} val loss {m.ValLoss:F4} " +
        $"val top-1 err {100 * m.ValTop1Error:F2}% top-5 err {100 * m.ValTop5Error:F2}% {m.ImagesPerSecond:F0} img/s {m.Seconds:F0} s");

    static void Write(string line)
    {
        if (Interactive) AnsiConsole.MarkupLine(Markup.Escape(line));
        else Console.WriteLine($"{DateTime.Now:HH:mm:ss} {line}");
    }
}
