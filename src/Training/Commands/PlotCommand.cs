using AlexNet.Training.Reporting;

namespace AlexNet.Training.Commands;

/// <summary><c>plot</c>: a run folder, then <see cref="Pictures.DrawRun"/>.</summary>
public sealed class PlotCommand : VerbCommand
{
    public PlotCommand() : base("plot", "Draw curves.png (loss and error per epoch) and conv1.png (the conv1 kernels, tower a over tower b).")
    {
        var run = RequiredOpt("--run", "Run folder (uses last.ckpt).");
        AddOptions(run);
        SetAction(r =>
        {
            Pictures.DrawRun(r.GetValue(run)!, new ConsoleReport());
            return 0;
        });
    }
}
