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

    /// <summary>An enum value as the command line spells it (plateau, meanstd), and back.</summary>
    protected static string CliName<T>(T value) where T : struct, Enum => value.ToString().ToLowerInvariant();
    protected static T ParseName<T>(string name) where T : struct, Enum => Enum.Parse<T>(name, ignoreCase: true);

    protected void AddOptions(params Option[] options)
    {
        foreach (var option in options) Options.Add(option);
    }
}
