namespace AlexNet.Api.Gallery;

/// <summary>A gallery image as stored, without its pictures.</summary>
/// <param name="Fingerprint">The model that computed <paramref name="Features"/>; empty (and no features) when the
/// store has no vector of the model asked for.</param>
public sealed record GalleryRecord(long Id, string? Label, string? Note, DateTimeOffset CreatedUtc, string Sha256,
    int Width, int Height, string Fingerprint, float[] Features);

/// <summary>A new gallery image: its metadata, the normalised copy (prepared RGB as PNG) and a thumbnail.</summary>
public sealed record NewGalleryImage(string? Label, string? Note, string Sha256, int Width, int Height,
    byte[] PreparedPng, int PreparedSize, byte[] ThumbnailPng, string Fingerprint, float[] Features);

/// <summary>What a write stored: the new ids (for an insert) and the change sequence it committed (0 for a store that
/// keeps none).</summary>
public sealed record GalleryWrite(long[] Ids, long Sequence);

/// <summary>Every live row as of one change sequence (0 for a store that keeps none).</summary>
public sealed record GallerySnapshot(List<GalleryRecord> Rows, long Sequence);

/// <summary>A stored copy to embed: the prepared square (PNG) and the resize size it was made at.</summary>
public sealed record StoredCopy(long Id, byte[] Png, int Size);

/// <summary>Embeds stored copies with the model in service; copies that do not decode are left out of the answer.</summary>
public delegate IReadOnlyList<(long Id, float[] Features)> Embedder(IReadOnlyList<StoredCopy> copies);

/// <summary>The store could not write for want of space: nothing of the write was stored.</summary>
public sealed class GalleryStoreFullException(string message, Exception inner) : Exception(message, inner);

/// <summary>The store cannot be reached (a database server down or unreachable): nothing of the write was stored,
/// or the read could not be made. The service reconnects by itself.</summary>
public sealed class GalleryStoreUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// The gallery's system of record: rows with their normalised copies, thumbnails and vectors. Every write is durable
/// when it returns, one call one transaction. <see cref="SqliteGalleryStore"/> is the embedded default (one process,
/// one vector a row); <see cref="PostgresGalleryStore"/> is shared by several replicas (vectors per model, a change
/// feed: <see cref="ISharedGalleryStore"/>). <see cref="GalleryService"/> and the in-memory index do not change.
/// </summary>
public interface IGalleryStore : IDisposable
{
    /// <summary>Where it is, for messages (a file, a server).</summary>
    string Location { get; }
    /// <summary>Creates or migrates the schema; throws <see cref="GalleryUnavailableException"/> when the store is
    /// not this service's, <see cref="GalleryStoreUnavailableException"/> while it cannot be reached.</summary>
    void Open();
    /// <summary>Inserts in one transaction; returns the new ids in order. Throws <see cref="GalleryStoreFullException"/>.</summary>
    GalleryWrite Insert(IReadOnlyList<NewGalleryImage> images, DateTimeOffset createdUtc);
    /// <summary>Every live row, oldest first, with its vector of <paramref name="fingerprint"/>'s model where the store
    /// keeps one a model (else the row's one vector, whatever its model); a row that does not read is passed to
    /// <paramref name="bad"/> and left out.</summary>
    GallerySnapshot ReadAll(string fingerprint, Action<long, string>? bad = null);
    (byte[] Png, int Size)? ReadPrepared(long id);
    byte[]? ReadThumbnail(long id);
    /// <summary>
    /// One batch of live rows that lack a vector of <paramref name="fingerprint"/>'s model (of
    /// <paramref name="dim"/> floats), other than <paramref name="skip"/>: embeds them with
    /// <paramref name="embed"/> and stores the vectors in one transaction. A shared store hands each row to one replica
    /// at a time (rows another replica is embedding are passed over). Returns how many rows this call claimed and how
    /// many still lack a vector afterwards (other than <paramref name="skip"/>, including rows others are embedding).
    /// Throws <see cref="GalleryStoreFullException"/>.
    /// </summary>
    (int Claimed, int Left) EmbedMissing(string fingerprint, int dim, int batch, IReadOnlyCollection<long> skip, Embedder embed);
    /// <summary>The change sequence of the delete; null when there is no such row. A shared store keeps a tombstone.
    /// Throws <see cref="GalleryStoreFullException"/>.</summary>
    long? Delete(long id);
}

/// <summary>What changed in a shared store, in sequence order.</summary>
public enum GalleryChangeKind
{
    /// <summary>An image was added (with its vector of the model asked for, when there is one).</summary>
    Added,
    /// <summary>A vector of the model asked for was stored for an existing image.</summary>
    Embedded,
    Deleted,
}

/// <summary>One change. <see cref="Row"/> is the image as stored now (null when deleted since or not an add);
/// <see cref="Features"/> its vector of the model asked for (null when there is none yet).</summary>
public sealed record GalleryChange(long Sequence, GalleryChangeKind Kind, long Id, GalleryRecord? Row, float[]? Features);

/// <summary>
/// A store that several replicas share: every write gets the next change sequence (monotonic and without gaps in
/// commit order), and each replica's index follows the changes (<see cref="GalleryFollower"/>).
/// </summary>
public interface ISharedGalleryStore : IGalleryStore
{
    /// <summary>Changes after <paramref name="after"/>, at most <paramref name="max"/>, oldest first, with vectors of
    /// <paramref name="fingerprint"/>'s model; Embedded changes of other models are left out (their sequence still
    /// counts: the returned <c>Through</c> is the last sequence read).</summary>
    (List<GalleryChange> Changes, long Through) ReadChanges(long after, string fingerprint, int max);
    /// <summary>Waits for a change notification (true), or <paramref name="timeout"/> (false); throws
    /// <see cref="GalleryStoreUnavailableException"/> when the listening connection is lost.</summary>
    Task<bool> WaitForChangeAsync(TimeSpan timeout, CancellationToken ct);
}
