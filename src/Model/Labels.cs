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
}
