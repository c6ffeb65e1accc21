using AlexNet.Training.Loop;

namespace AlexNet.Training.Commands;

/// <summary><c>resume</c>: a <see cref="ResumeRequest"/>, then <see cref="Runs.Resume"/>.</summary>
public sealed class ResumeCommand : VerbCommand
{
    public ResumeCommand() : base("resume", "Continue a run exactly where it stopped (optionally with a new length or schedule).")
    {
        var run = RequiredOpt("--run", "Run folder to continue (its last.ckpt).");
        var epochs = Opt<int?>("--epochs", "New total number of epochs (default: the original).");
        var lr = Opt<double?>("--lr", "Change the learning rate from here on (default: the schedule's).");
        var steps = new Option<int[]?>("--step-epochs") { Description = "Switch to a step schedule with these epochs.", AllowMultipleArgumentsPerToken = true };
        AddOptions(run, epochs, lr, steps);

        SetAction(r =>
        {
            Runs.Resume(new ResumeRequest(r.GetValue(run)!, r.GetValue(epochs), r.GetValue(lr), r.GetValue(steps)));
            return 0;
        });
    }
}
