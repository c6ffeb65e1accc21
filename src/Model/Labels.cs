namespace AlexNet.Model;

/// <summary>Class names in index order, with WordNet ids where known.</summary>
public sealed record LabelSet(IReadOnlyList<string> Names, IReadOnlyList<string>? Synsets = null)
{
    public int Count => Names.Count;

    /// <summary>Reads "wnid&lt;TAB&gt;label" lines (imagenet1k-synsets.txt) or plain "label" lines.</summary>
    public static LabelSet Load(string path)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToArray();
        if (lines.Length == 0) throw new InvalidDataException($"{path}: no labels.");
        if (lines.All(l => l.Contains('\t')))
        {
            var parts = lines.Select(l => l.Split('\t', 2)).ToArray();
            return new LabelSet(parts.Select(p => p[1]).ToArray(), parts.Select(p => p[0]).ToArray());
        }
        return new LabelSet(lines);
    }

    public static LabelSet FashionMnist { get; } = new(
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]);

    /// <summary>What a model trained on Fashion-MNIST knows (its provenance's <c>domain</c>); the bundled demo model carries it.</summary>
    public const string FashionMnistDomain = "Fashion-MNIST: small grey pictures (28x28 scaled to 64x64) of one light garment, " +
        "shoe or bag on a dark background, in ten classes. Photos and other pictures get meaningless answers.";
}
