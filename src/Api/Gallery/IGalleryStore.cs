namespace AlexNet.Api.Gallery;

/// <summary>A gallery image as stored, without its pictures.</summary>
/// <param name="Fingerprint">The model that computed <paramref name="Features"/>.</param>
public sealed record GalleryRecord(long Id, string? Label, string? Note, DateTimeOffset CreatedUtc, string Sha256,
    int Width, int Height, string Fingerprint, float[] Features);

/// <summary>A new gallery image: its metadata, the normalised copy (prepared RGB as PNG) and a thumbnail.</summary>
public sealed record NewGalleryImage(string? Label, string? Note, string Sha256, int Width, int Height,
    byte[] PreparedPng, int PreparedSize, byte[] ThumbnailPng, string Fingerprint, float[] Features);

/// <summary>The store could not write for want of space: nothing of the write was stored.</summary>
public sealed class GalleryStoreFullException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// The gallery's system of record: rows with their normalised copies, thumbnails and vectors. Every write is durable
/// when it returns, one call one transaction. <see cref="SqliteGalleryStore"/> is the embedded default (one
/// process); a store shared by several replicas (issue 17: PostgreSQL) implements the same calls, and
/// <see cref="GalleryService"/> and the in-memory index do not change.
/// </summary>
public interface IGalleryStore : IDisposable
{
    /// <summary>Where it is, for messages (a file, a server).</summary>
    string Location { get; }
    /// <summary>Inserts in one transaction; returns the new ids in order. Throws <see cref="GalleryStoreFullException"/>.</summary>
    long[] Insert(IReadOnlyList<NewGalleryImage> images, DateTimeOffset createdUtc);
    /// <summary>Every row, oldest first; a row that does not read is passed to <paramref name="bad"/> and left out.</summary>
    List<GalleryRecord> ReadAll(Action<long, string>? bad = null);
    (byte[] Png, int Size)? ReadPrepared(long id);
    byte[]? ReadThumbnail(long id);
    /// <summary>Replaces vectors (and their model) in one transaction. Throws <see cref="GalleryStoreFullException"/>.</summary>
    void UpdateFeatures(IReadOnlyList<(long Id, float[] Features)> rows, string fingerprint);
    /// <summary>False when there is no such row. Throws <see cref="GalleryStoreFullException"/>.</summary>
    bool Delete(long id);
}
