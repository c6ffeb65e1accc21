namespace AlexNet.Search;

/// <summary>A gallery image's distance from the query in feature space.</summary>
public readonly record struct Neighbour(long Id, float Distance);

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
