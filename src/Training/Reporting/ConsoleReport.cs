using System.Diagnostics;
using Spectre.Console;

namespace AlexNet.Training.Reporting;

/// <summary>Progress bars (loss, error, img/s, ETA) on a terminal; plain timestamped lines when output is redirected.</summary>
/// <param name="toStderr">Plain lines to stderr instead of stdout: for commands whose stdout is their result (evaluate).</param>
public sealed class ConsoleReport(bool toStderr = false) : ITrainingReport
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

    public void Progress(string task, int done, int total, string text)
    {
        if (_progress is not null)
        {
            if (!_tasks.TryGetValue(task, out var bar)) _tasks[task] = bar = _progress.AddTask(Markup.Escape(task), maxValue: total);
            bar.Description = Markup.Escape($"{task} {text}");
            bar.Value = done;
            return;
        }
        if (done == total || _lastLine.Elapsed.TotalSeconds >= 30)
        {
            Write($"{task} {text} [{done}/{total}]");
            _lastLine.Restart();
        }
    }

    readonly Dictionary<string, ProgressTask> _tasks = [];

    public void Epoch(EpochMetrics m) => Write(
        $"epoch {m.Epoch} done: lr {m.Lr:G3} train loss {m.TrainLoss:F4} val loss {m.ValLoss:F4} " +
        $"val top-1 err {100 * m.ValTop1Error:F2}% top-5 err {100 * m.ValTop5Error:F2}% {m.ImagesPerSecond:F0} img/s {m.Seconds:F0} s");

    void Write(string line)
    {
        if (Interactive) AnsiConsole.MarkupLine(Markup.Escape(line));
        else (toStderr ? Console.Error : Console.Out).WriteLine($"{DateTime.Now:HH:mm:ss} {line}");
    }
}
