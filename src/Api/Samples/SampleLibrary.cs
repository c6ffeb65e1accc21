using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Samples;

/// <summary>One sample image: <paramref name="Name"/> is its file name without <c>.png</c> (what a request names),
/// <paramref name="Label"/> the class it shows.</summary>
public sealed record Sample(string Name, string Label, string Path);

/// <summary>
/// The sample images the page offers ("Try a sample") and <c>Gallery:SeedSamples</c> stores: the PNGs that
/// <c>samples.json</c> in <c>Samples:Path</c> lists (models/samples: Fashion-MNIST test images for the demo model).
/// Read once at start. A request names a sample by the name this list gives it and gets that file; it never names a
/// path. A missing folder or manifest means no samples (a deployment may leave them out); a manifest that does not
/// read, or an entry outside the folder, stops the start with the file in the message.
/// </summary>
public sealed partial class SampleLibrary
{
    /// <summary>Bounds on what the manifest may ask the service to keep ready: a handful per class is the point.</summary>
    public const int MaxSamples = 500;
    public const long MaxSampleBytes = 1 << 20;

    readonly Dictionary<string, Sample> _byName = new(StringComparer.Ordinal);

    public SampleLibrary(IOptions<SamplesOptions> options, IHostEnvironment env, ILogger<SampleLibrary> log)
    {
        Folder = OptionsRegistration.Resolve(env, options.Value.Path);
        var manifest = System.IO.Path.Combine(Folder, "samples.json");
        if (!File.Exists(manifest))
        {
            log.LogInformation("No sample images: {Manifest} does not exist (Samples:Path).", manifest);
            All = [];
            return;
        }
        All = Read(manifest);
        foreach (var s in All) _byName[s.Name] = s;
        log.LogInformation("{Count} sample images from {Folder}.", All.Count, Folder);
    }

    public string Folder { get; }
    public IReadOnlyList<Sample> All { get; }

    public Sample? Find(string name) => _byName.GetValueOrDefault(name);

    IReadOnlyList<Sample> Read(string manifest)
    {
        Manifest? m;
        try
        {
            m = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifest), JsonOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{manifest}: not a samples manifest ({{\"items\": [{{\"file\", \"label\"}}]}}): {e.Message}", e);
        }
        var items = m?.Items ?? [];
        if (items.Length > MaxSamples)
            throw new InvalidDataException($"{manifest} lists {items.Length} samples; at most {MaxSamples}.");
        var root = System.IO.Path.GetFullPath(Folder) + System.IO.Path.DirectorySeparatorChar;
        var samples = new List<Sample>();
        foreach (var item in items)
        {
            var path = System.IO.Path.GetFullPath(System.IO.Path.Combine(Folder, item.File ?? ""));
            var name = System.IO.Path.GetFileNameWithoutExtension(path);
            if (!path.StartsWith(root, StringComparison.Ordinal) || !path.EndsWith(".png", StringComparison.Ordinal) || !SafeName().IsMatch(name))
                throw new InvalidDataException($"{manifest}: '{item.File}' is not a .png file inside {Folder} with a name of letters, digits and '-'.");
            if (string.IsNullOrWhiteSpace(item.Label))
                throw new InvalidDataException($"{manifest}: '{item.File}' has no label.");
            var info = new FileInfo(path);
            if (!info.Exists || info.Length > MaxSampleBytes)
                throw new InvalidDataException($"{manifest}: {path} is missing or larger than {MaxSampleBytes} bytes.");
            if (samples.Any(s => s.Name == name))
                throw new InvalidDataException($"{manifest}: two samples are named '{name}'.");
            samples.Add(new Sample(name, item.Label, path));
        }
        return samples;
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,63}$")]
    private static partial Regex SafeName();

    static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    sealed record Manifest(string? Source, ManifestItem[]? Items);
    sealed record ManifestItem(string? File, string? Label, int? TestIndex);
}
