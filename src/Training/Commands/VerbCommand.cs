namespace AlexNet.Training.Commands;

/// <summary>
/// A verb of the command line: a Command whose constructor declares its options (in help order) and sets an action
/// that parses them into a record and hands it to the code that does the work.
/// </summary>
public abstract class VerbCommand(string name, string description) : Command(name, description)
{
    protected static Option<T> Opt<T>(string name, string description, T defaultValue) =>
        new(name) { Description = description, DefaultValueFactory = _ => defaultValue };
    protected static Option<T?> Opt<T>(string name, string description) => new(name) { Description = description };
    protected static Option<string> RequiredOpt(string name, string description) => new(name) { Description = description, Required = true };

    /// <summary>--limit and --limit-batches, shared by train and finetune.</summary>
    protected static (Option<int?> Limit, Option<int?> LimitBatches) SmokeRunOptions() =>
        (Opt<int?>("--limit", "Use only the first N training images."), Opt<int?>("--limit-batches", "Stop each epoch after N batches (smoke runs)."));

    /// <summary>--force: the one way to replace what an earlier run wrote.</summary>
    protected static Option<bool> ForceOpt() => Opt("--force", "Replace an existing output file or run folder.", false);

    /// <summary>Refuses to write over an existing file (or a run folder that holds a run) unless --force was given:
    /// an export over the bundled model, or a second train into the same folder, must be asked for.</summary>
    protected static void RefuseOverwrite(string? path, bool force, bool runFolder = false)
    {
        if (force || path is null) return;
        var taken = runFolder
            ? Directory.Exists(path) && new[] { "last.ckpt", "best.ckpt", "best.pth", "metrics.csv" }.Any(f => File.Exists(Path.Combine(path, f)))
            : File.Exists(path);
        if (taken)
            throw new IOException($"{path} already {(runFolder ? "holds a run" : "exists")}; choose another {(runFolder ? "--out" : "path")}, " +
                "or pass --force to replace it.");
    }

    /// <summary>An enum value as the command line spells it (plateau, meanstd), and back.</summary>
    protected static string CliName<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();
    protected static T ParseName<T>(string name) where T : struct, Enum => Enum.Parse<T>(name, ignoreCase: true);

    protected void AddOptions(params Option[] options)
    {
        foreach (var option in options) Options.Add(option);
    }
}
