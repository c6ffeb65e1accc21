namespace AlexNet.Search;

/// <summary>
/// The gallery's vectors of one model, searched exactly by Euclidean distance. <see cref="FeatureIndex"/> keeps them
/// in this process's memory; a gallery larger than one machine's memory would put a sharded vector engine (README,
/// "Several replicas") behind this interface instead, and nothing above it (the service's gallery, its generations
/// and endpoints) would change.
/// </summary>
public interface IVectorIndex
{
    int Dim { get; }
    int Count { get; }
    /// <summary>The bytes one search reads to scan every row (in its storage's coding).</summary>
    long ScanBytes => (long)Count * Dim * sizeof(float);
    void Add(long id, ReadOnlySpan<float> vector);
    /// <summary>False when there is no such id.</summary>
    bool Remove(long id);
    /// <summary>The stored vector, or null.</summary>
    float[]? Get(long id);
    /// <summary>The k nearest, nearest first, <paramref name="exclude"/> left out.</summary>
    Neighbour[] Search(ReadOnlySpan<float> query, int k, long? exclude = null);
    /// <summary>Several searches answered together; each answer equals that search alone.</summary>
    Neighbour[][] Search(IReadOnlyList<SearchQuery> queries);
}
