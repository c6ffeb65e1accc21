using System.CommandLine;
using AlexNet.Training.Reporting;
using static AlexNet.Training.Commands.Cli;

namespace AlexNet.Training.Commands;

/// <summary><c>plot</c>: a run folder, then <see cref="Pictures.DrawRun"/>.</summary>
public sealed class PlotCommand : Command
{
    public PlotCommand() : base("plot", "Draw curves.png (loss and error per epoch) and conv1.png (the conv1 kernels, tower a over tower b).")
    {
        var run = RequiredOpt("--run", "Run folder (uses last.ckpt).");
        Options.Add(run);
        SetAction(r =>
        {
            Pictures.DrawRun(r.GetValue(run)!, new ConsoleReport());
            return 0;
        });
    }
}
