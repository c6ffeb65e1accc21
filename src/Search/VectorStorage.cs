namespace AlexNet.Search;

/// <summary>A gallery image's distance from the query in feature space.</summary>
public readonly record struct Neighbour(long Id, float Distance);

/// <summary>One query of a search of several at once (<see cref="FeatureIndex.Search(IReadOnlyList{SearchQuery})"/>):
/// the k nearest to <see cref="Vector"/>, leaving out <see cref="Exclude"/>.</summary>
public readonly record struct SearchQuery(float[] Vector, int K, long? Exclude = null);

/// <summary>How <see cref="FeatureIndex"/> stores the vectors that a search scans (one codec each, in Codecs/).</summary>
public enum VectorStorage
{
    /// <summary>The fp32 vectors themselves (4 bytes a value) are scanned: the exact search.</summary>
    Float32,
    /// <summary>An fp16 copy (2 bytes a value) is scanned; a short list is re-ranked exactly from the fp32 vectors.</summary>
    Float16,
    /// <summary>A uint8 copy (1 byte a value, with a per-row offset and scale) is scanned; a short list is re-ranked
    /// exactly from the fp32 vectors.</summary>
    Int8,
}
