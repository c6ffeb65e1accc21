using System.Diagnostics;
using AlexNet.Api.Inference;
using AlexNet.Api.Serving;
using AlexNet.Model.Imaging;
using Microsoft.Extensions.Options;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace AlexNet.Api.Gallery;

/// <summary>A gallery image's public description.</summary>
public sealed record GalleryEntry(long Id, string? Label, string? Note, DateTimeOffset CreatedUtc, string Sha256, int Width, int Height);

/// <summary>
/// The gallery: an <see cref="IGalleryStore"/> for durability (a SQLite file for one process, PostgreSQL for several
/// replicas), a <see cref="FeatureIndex"/> in memory for search, built for each model put in service and published
/// with it as one <see cref="Generation"/>. Rows without a vector of the model in service are embedded from their
/// stored normalised copy before it serves (<see cref="SwitchModel"/>, at start and on reload), so one index never
/// mixes two models' features. Changes go to the store first, then to the index of the generation in service:
/// directly with SQLite; through the store's change feed with a shared store (<see cref="CatchUp"/>, driven by
/// <see cref="GalleryFollower"/>), so writes of other replicas arrive the same way as this one's, in sequence order.
/// </summary>
public sealed class GalleryService(ServingHost host, IOptions<GalleryOptions> options, IOptions<InferenceOptions> inference,
    IConfiguration configuration, IHostEnvironment env, ILogger<GalleryService> log) : IDisposable
{
    readonly GalleryOptions _options = options.Value;
    readonly SearchCoalescer _searches = new(options.Value.SearchBatchMax, TimeSpan.FromMilliseconds(options.Value.SearchBatchDelayMs))
    {
        AloneBelowBytes = (long)options.Value.SearchAloneBelowMiB << 20,
    };
    readonly Lock _lock = new();   // held while a generation is published or changes are applied, so none lands between
    readonly Lock _applying = new();   // one catch-up at a time
    readonly SortedDictionary<long, GalleryEntry> _entries = [];
    readonly Dictionary<long, long> _missing = [];   // shared store: live rows without this model's vector yet -> their add's change
    readonly HashSet<long> _failed = [];    // rows whose stored copy does not decode: never searchable, not retried
    IGalleryStore? _store;
    string? _fingerprint;   // the model whose vectors the index holds (changes are read for it)
    long _sequence;   // shared store: the last change applied to the index and the entries

    public string DatabasePath { get; } = OptionsRegistration.Resolve(env, options.Value.DatabasePath);

    /// <summary>Where the gallery lives, for messages: the SQLite file or the database server.</summary>
    public string Location => _store?.Location ?? DatabasePath;

    /// <summary>True when several replicas share the store (PostgreSQL): changes come through the feed.</summary>
    public bool IsShared => _store is ISharedGalleryStore;

    /// <summary>Shared store: the last change sequence the index and listing reflect (0 with SQLite).</summary>
    public long Sequence => Interlocked.Read(ref _sequence);

    public int Count
    {
        get { lock (_lock) return _entries.Count; }
    }

    /// <summary>Live rows without a vector of the model in service (shared store: other replicas' adds of another model).</summary>
    public int Missing
    {
        get { lock (_lock) return _missing.Count; }
    }

    /// <summary>Makes the store named by Gallery:Store; a SQLite file is opened (or created) at once and one that cannot
    /// be used stops the start. A database server is connected to when the gallery loads, retrying while it cannot be
    /// reached.</summary>
    public void Open()
    {
        if (_options.Store == GalleryStoreKind.Postgres)
        {
            var cs = configuration.GetConnectionString("Gallery");
            if (string.IsNullOrWhiteSpace(cs))
                throw new GalleryUnavailableException("Gallery:Store is Postgres but ConnectionStrings:Gallery is empty (set ConnectionStrings__Gallery, " +
                    "e.g. \"Host=db;Database=alexnet;Username=alexnet;Password=...\").");
            _store = new PostgresGalleryStore(cs);
            return;
        }
        var sqlite = new SqliteGalleryStore(DatabasePath);
        try
        {
            sqlite.Open();
        }
        catch
        {
            sqlite.Dispose();
            throw;
        }
        if (sqlite.JournalMode != "wal")
            log.LogWarning("Gallery database {Path} runs in journal mode {Mode}, not WAL.", DatabasePath, sqlite.JournalMode);
        _store = sqlite;
    }

    /// <summary>
    /// Embeds every row that lacks a vector of <paramref name="next"/>'s model, builds its index and calls
    /// <paramref name="publish"/> (which puts model and index in service as one generation) under the write lock: no
    /// write lands between the two. Most of the work happens first, with writes still open (each vector is stored as it
    /// is made, so a crash part-way loses nothing: the next start embeds what is left; with a shared store, replicas of
    /// the same model split the rows between them); under the lock only rows added meanwhile are embedded.
    /// <paramref name="waitForStore"/>: while a database server cannot be reached, say so in readiness and retry (at
    /// start) instead of failing (a reload is refused with 503).
    /// </summary>
    public void SwitchModel(OnnxClassifier next, Action<IVectorIndex?> publish, bool waitForStore = false)
    {
        var store = _store ?? throw new InvalidOperationException("The gallery is not open.");
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                if (IsShared) store.Open();   // schema created or migrated; idempotent
                Switch(store, next, publish);
                return;
            }
            catch (GalleryStoreUnavailableException e) when (waitForStore)
            {
                host.Report($"waiting for the gallery database: {e.Message}");
                if (attempt == 1 || attempt % 30 == 0) log.LogWarning("Gallery: {Error}; retrying every second.", e.Message);
                Thread.Sleep(TimeSpan.FromSeconds(1));
            }
            catch (GalleryStoreUnavailableException e)
            {
                throw RefusedException.Overloaded($"The gallery cannot be re-indexed for the new model: {e.Message}. The current model keeps " +
                    "serving; send this again when the database is back.", inference.Value.RetryAfterSeconds);
            }
        }
    }

    void Switch(IGalleryStore store, OnnxClassifier next, Action<IVectorIndex?> publish)
    {
        var model = next.Model;
        var watch = Stopwatch.StartNew();
        var failed = new HashSet<long>();
        if (model.HasFeatures) EmbedAll(store, next, failed, wait: true);
        var open = watch.ElapsedMilliseconds;
        lock (_lock)
        {
            var late = model.HasFeatures ? EmbedAll(store, next, failed, wait: false) : 0;
            var skipped = 0;
            var snapshot = store.ReadAll(model.Fingerprint, (id, why) =>
            {
                if (++skipped <= 10) log.LogWarning("Gallery {Path}: row {Id} does not read ({Why}); it is left out.", Location, id, why);
            });
            if (skipped > 0) log.LogWarning("Gallery {Path}: {Skipped} rows left out because they do not read.", Location, skipped);
            var index = model.HasFeatures ? NewIndex(model.FeatureDim) : null;
            _entries.Clear();
            _missing.Clear();
            _failed.Clear();
            _failed.UnionWith(failed);
            foreach (var r in snapshot.Rows)
            {
                if (index is not null && IsStale(r, model))
                {
                    // Never two models' vectors in one index: a row whose copy does not decode stays stored but out of
                    // search; with a shared store a row another replica added meanwhile is embedded by the follower.
                    if (failed.Contains(r.Id) || !IsShared) continue;
                    _missing[r.Id] = 0;   // added at or before the snapshot
                }
                else index?.Add(r.Id, r.Features);
                _entries[r.Id] = Entry(r);
            }
            _fingerprint = model.Fingerprint;
            Interlocked.Exchange(ref _sequence, snapshot.Sequence);
            publish(index);
            Published();
            log.LogInformation("Gallery {Path}: {Count} images indexed for model {Fingerprint} in {Ms} ms ({Held} ms with writes " +
                "held, {Late} embedded then; change {Sequence}).", Location, snapshot.Rows.Count, model.Fingerprint, watch.ElapsedMilliseconds,
                watch.ElapsedMilliseconds - open, late, snapshot.Sequence);
        }
    }

    /// <summary>Where a model's vectors are kept and searched: this process's memory (see <see cref="IVectorIndex"/>).</summary>
    IVectorIndex NewIndex(int dim) => new FeatureIndex(dim, _options.SearchStorage, _options.RerankFactor, _options.SearchThreads);

    static bool IsStale(GalleryRecord r, ModelInfo model) => r.Fingerprint != model.Fingerprint || r.Features.Length != model.FeatureDim;

    /// <summary>Embeds rows without a vector of <paramref name="classifier"/>'s model, a batch at a time; rows whose copy
    /// does not decode go to <paramref name="failed"/>. <paramref name="wait"/>: also wait for rows other replicas are
    /// embedding. Returns how many rows were embedded here.</summary>
    int EmbedAll(IGalleryStore store, OnnxClassifier classifier, HashSet<long> failed, bool wait)
    {
        var model = classifier.Model;
        var done = 0;
        var batch = Math.Max(1, inference.Value.MaxBatchSize);
        while (true)
        {
            var (claimed, left) = store.EmbedMissing(model.Fingerprint, model.FeatureDim, batch, failed, Embedding(classifier, failed));
            done += claimed;
            if (claimed == 0 && (left == 0 || !wait)) break;
            if (claimed == 0) Thread.Sleep(50);   // the rest are being embedded by other replicas of this model
            else if (done == claimed) log.LogInformation("Embedding gallery images for model {Fingerprint} ({Left} more to do).", model.Fingerprint, left);
        }
        return done;
    }

    /// <summary>Embeds copies with <paramref name="classifier"/>; those that do not decode go to <paramref name="failed"/>.</summary>
    Embedder Embedding(OnnxClassifier classifier, HashSet<long> failed) => copies =>
    {
        var vectors = Embed(classifier, copies);
        var made = vectors.Select(v => v.Id).ToHashSet();
        failed.UnionWith(copies.Select(c => c.Id).Where(id => !made.Contains(id)));
        return vectors;
    };

    /// <summary>Shared store: embeds rows of other replicas' adds that lack this model's vector (one batch; the vectors
    /// come back through the feed). Returns whether any were claimed.</summary>
    public bool EmbedPending()
    {
        if (_store is not ISharedGalleryStore store || Missing == 0) return false;
        using var lease = host.Acquire();
        if (!lease.Model.HasFeatures) return false;
        HashSet<long> failed;
        lock (_lock)
        {
            if (lease.Model.Fingerprint != _fingerprint) return false;
            failed = [.. _failed];
        }
        var before = failed.Count;
        var (claimed, _) = store.EmbedMissing(lease.Model.Fingerprint, lease.Model.FeatureDim, Math.Max(1, inference.Value.MaxBatchSize), failed,
            Embedding(lease.Classifier, failed));
        if (failed.Count > before)
            lock (_lock)
            {
                foreach (var id in failed.Where(_missing.ContainsKey))
                {
                    _missing.Remove(id);
                    _entries.Remove(id);
                }
                _failed.UnionWith(failed);
                Published();
            }
        return claimed > 0;
    }

    /// <summary>
    /// Shared store: applies the changes after <see cref="Sequence"/> to the index and the listing, in order, until
    /// none are left (or the index reflects <paramref name="through"/>). Adds of other models' replicas arrive without
    /// this model's vector and wait for <see cref="EmbedPending"/>. Throws <see cref="GalleryStoreUnavailableException"/>.
    /// </summary>
    public void CatchUp(long through = long.MaxValue)
    {
        if (_store is not ISharedGalleryStore store) return;
        lock (_applying)
            while (Sequence < through)
            {
                string fingerprint;
                long after;
                lock (_lock)
                {
                    if (_fingerprint is null) return;   // not loaded yet: the load reads everything
                    fingerprint = _fingerprint;
                    after = _sequence;
                }
                var (changes, read) = store.ReadChanges(after, fingerprint, 1000);
                if (read == after) return;   // nothing new
                lock (_lock)
                {
                    if (_fingerprint != fingerprint || _sequence != after) continue;   // a model switch reloaded meanwhile: read again
                    var index = host.Current?.Index;
                    foreach (var c in changes) Apply(c, index);
                    Interlocked.Exchange(ref _sequence, read);
                    Published();
                }
            }
    }

    void Apply(GalleryChange c, IVectorIndex? index)
    {
        switch (c.Kind)
        {
            case GalleryChangeKind.Added when c.Row is { } row && !_entries.ContainsKey(c.Id):
                _entries[c.Id] = Entry(row);
                if (index is null) break;
                if (c.Features is { } f && f.Length == index.Dim) index.Add(c.Id, f);
                else _missing[c.Id] = c.Sequence;
                break;
            case GalleryChangeKind.Embedded when c.Features is { } vector && _missing.Remove(c.Id):
                if (index is not null && vector.Length == index.Dim) index.Add(c.Id, vector);
                break;
            case GalleryChangeKind.Deleted:
                index?.Remove(c.Id);
                _entries.Remove(c.Id);
                _missing.Remove(c.Id);
                break;
        }
    }

    /// <summary>Waits until the index reflects change <paramref name="sequence"/> (a client's read-your-writes across
    /// replicas), reading the feed at once rather than waiting for the follower; a 503 refusal after
    /// Gallery:MinSequenceWaitMs.</summary>
    public async Task WaitForSequenceAsync(long sequence, CancellationToken ct)
    {
        if (!IsShared || Reflects(sequence)) return;
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await Task.Run(() => CatchUp(sequence), ct);
            }
            catch (GalleryStoreUnavailableException e)
            {
                throw RefusedException.Overloaded($"This replica's gallery reflects change {Sequence}, not yet {sequence}, and {e.Message}. " +
                    "Send this again, or without X-Gallery-Min-Sequence to search what this replica has.", inference.Value.RetryAfterSeconds);
            }
            if (Reflects(sequence)) return;
            if (deadline.ElapsedMilliseconds >= _options.MinSequenceWaitMs)
                throw RefusedException.Overloaded($"This replica's gallery does not reflect change {sequence} yet (it has applied {Sequence}, {Missing} images wait for this model's vectors; waited " +
                    $"{_options.MinSequenceWaitMs} ms, Gallery:MinSequenceWaitMs). Send this again.", inference.Value.RetryAfterSeconds);
            await Task.Delay(20, ct);
        }
    }

    /// <summary>Shared store: waits for a change notification or <paramref name="timeout"/>.</summary>
    public Task<bool> WaitForChangeAsync(TimeSpan timeout, CancellationToken ct) =>
        _store is ISharedGalleryStore store ? store.WaitForChangeAsync(timeout, ct) : Task.Delay(timeout, ct).ContinueWith(_ => false, ct);

    /// <summary>Every change up to <paramref name="sequence"/> is applied, and every image added by then has this
    /// model's vector in the index (with replicas of two models, the other model's adds are embedded here first).</summary>
    bool Reflects(long sequence)
    {
        lock (_lock) return _sequence >= sequence && !_missing.Values.Any(added => added <= sequence);
    }

    void Published()
    {
        ApiMetrics.GalleryImages.Set(_entries.Count);
        ApiMetrics.GallerySequence.Set(_sequence);
    }

    /// <summary>FC7 vectors of stored prepared copies (PNG, and the resize size they were made at) with
    /// <paramref name="classifier"/>, one ONNX Runtime call. Copies that are missing or do not decode are left out.</summary>
    List<(long Id, float[] Features)> Embed(OnnxClassifier classifier, IReadOnlyList<StoredCopy> items)
    {
        var model = classifier.Model;
        var pre = model.Preprocessor;
        var decoder = new SafeImageDecoder();
        var input = new float[items.Count * pre.CropLength];   // (n, 3, S, S)
        var ids = new List<long>(items.Count);
        foreach (var (id, png, size) in items)
        {
            PreparedImage prepared;
            try
            {
                using var image = decoder.Decode(png);
                prepared = size == model.ResizeSize && image.Width == size && image.Height == size
                    ? FromImage(image)
                    : pre.Prepare(image);   // another preset: re-prepare the stored square (TODO: keeps only the old resolution's detail)
            }
            catch (ImageRejectedException e)
            {
                log.LogWarning("Gallery image {Id}: its stored copy does not decode ({Error}); it is left out of search.", id, e.Message);
                continue;
            }
            pre.WriteCrop(prepared, pre.Center, input.AsSpan(ids.Count * pre.CropLength, pre.CropLength));
            ids.Add(id);
        }
        if (ids.Count == 0) return [];
        var (_, features) = classifier.Run(input, ids.Count);   // (n, FeatureDim)
        return [.. ids.Select((id, i) => (id, features.AsSpan(i * model.FeatureDim, model.FeatureDim).ToArray()))];
    }

    /// <summary>The generation in service; a 503 refusal before the gallery is loaded for it.</summary>
    Generation Current => host.Require();
    IGalleryStore Store => _store ?? throw RefusedException.Overloaded("The gallery is not loaded: the model is not ready. Check /health/ready.",
        inference.Value.RetryAfterSeconds);

    /// <summary>Stores the images (one transaction), then indexes them; with a shared store, through the change feed
    /// up to this write's change (read your own write). Returns the fingerprint of the model whose vectors were stored,
    /// the entries in order and the write's change sequence. Images whose vectors came from a model that was replaced
    /// while their request ran are re-embedded with the one now serving, from their prepared copies.</summary>
    public (string Fingerprint, GalleryEntry[] Created, long Sequence) Add(IReadOnlyList<NewGalleryImage> images)
    {
        var store = Store;
        if (store is ISharedGalleryStore) return AddShared(store, images);
        lock (_lock)
        {
            var current = Current;   // stable under the lock: SwitchModel publishes under the same lock
            var index = current.Searchable;   // before anything is stored
            images = ForModel(current, images);
            var now = DateTimeOffset.UtcNow;
            var ids = Write(() => store.Insert(images, now)).Ids;
            var created = new GalleryEntry[ids.Length];
            for (var i = 0; i < ids.Length; i++)
            {
                var m = images[i];
                index.Add(ids[i], m.Features);
                created[i] = _entries[ids[i]] = new GalleryEntry(ids[i], m.Label, m.Note, now, m.Sha256, m.Width, m.Height);
            }
            Published();
            return (current.Fingerprint, created, 0);
        }
    }

    /// <summary>A shared store: the process lock is not held across the database round trip (other replicas write
    /// meanwhile anyway); the feed puts the rows in the index, in sequence order with everyone else's.</summary>
    (string Fingerprint, GalleryEntry[] Created, long Sequence) AddShared(IGalleryStore store, IReadOnlyList<NewGalleryImage> images)
    {
        Generation current;
        lock (_lock)
        {
            current = Current;
            _ = current.Searchable;
            images = ForModel(current, images);
        }
        var now = DateTimeOffset.UtcNow;
        var write = Write(() => store.Insert(images, now));
        try
        {
            CatchUp(write.Sequence);
        }
        catch (GalleryStoreUnavailableException e)
        {
            // Committed, so acknowledged; this replica's index gets it when the database answers again.
            log.LogWarning("Gallery: change {Sequence} is stored but not yet in this replica's index ({Error}).", write.Sequence, e.Message);
        }
        var created = images.Select((m, i) => new GalleryEntry(write.Ids[i], m.Label, m.Note, now, m.Sha256, m.Width, m.Height)).ToArray();
        return (current.Fingerprint, created, write.Sequence);
    }

    /// <summary>Checks the gallery's bound and re-embeds images of a replaced model with <paramref name="current"/>'s. Call under the lock.</summary>
    IReadOnlyList<NewGalleryImage> ForModel(Generation current, IReadOnlyList<NewGalleryImage> images)
    {
        if (_entries.Count + images.Count > _options.MaxImages)
            throw new RefusedException(Refusal.Conflict, "Gallery full",
                $"The gallery holds {_entries.Count} of at most {_options.MaxImages} images (Gallery:MaxImages); these " +
                $"{images.Count} would pass the limit. Nothing was added: delete images first, or raise the limit.");
        if (images.All(m => m.Fingerprint == current.Fingerprint)) return images;
        var fresh = Embed(current.Classifier, [.. images.Select((m, i) => new StoredCopy(i, m.PreparedPng, m.PreparedSize))]).ToDictionary();
        return [.. images.Select((m, i) => m.Fingerprint == current.Fingerprint ? m
            : fresh.TryGetValue(i, out var f) ? m with { Fingerprint = current.Fingerprint, Features = f }
            : throw new InvalidOperationException($"A new gallery image's prepared copy does not decode (image {i})."))];
    }

    /// <summary>The delete's change sequence (0 with SQLite); null when there is no such image.</summary>
    public long? Delete(long id)
    {
        var store = Store;
        if (store is ISharedGalleryStore)
        {
            if (Write(() => store.Delete(id)) is not { } seq) return null;
            try
            {
                CatchUp(seq);
            }
            catch (GalleryStoreUnavailableException e)
            {
                log.LogWarning("Gallery: change {Sequence} is stored but not yet in this replica's index ({Error}).", seq, e.Message);
            }
            return seq;
        }
        lock (_lock)
        {
            if (Write(() => store.Delete(id)) is null) return null;
            host.Current?.Index?.Remove(id);
            _entries.Remove(id);
            Published();
            return 0;
        }
    }

    /// <summary>Why the store is degraded (the last write failed for want of space, or a database server cannot be
    /// reached); null once it works again. Readiness reports it.</summary>
    public string? StoreFault { get; private set; }

    /// <summary>The follower reports whether the database answers.</summary>
    public void ReportStore(string? fault)
    {
        if (fault is not null && StoreFault is null) log.LogError("Gallery: {Error}. Writes are refused with 503 until it answers; " +
            "classification and search go on from memory.", fault);
        else if (fault is null && StoreFault is not null) log.LogInformation("Gallery: the database answers again.");
        StoreFault = fault;
    }

    /// <summary>A write to the store; a full disk is a 507 refusal (nothing was stored), a database that cannot be
    /// reached a 503 (nothing was stored); both mark the store degraded.</summary>
    T Write<T>(Func<T> write)
    {
        try
        {
            var result = write();
            StoreFault = null;
            return result;
        }
        catch (GalleryStoreFullException e)
        {
            StoreFault = e.Message;
            log.LogError("Gallery {Path}: a write failed for want of space: {Error}", Location, e.Message);
            throw new RefusedException(Refusal.InsufficientStorage, "Insufficient storage",
                "The gallery's disk is full, so nothing was stored (everything stored before is kept). Free space on the volume of " +
                "Gallery:DatabasePath, then send this again. Classification and search go on.");
        }
        catch (GalleryStoreUnavailableException e)
        {
            ReportStore(e.Message);
            throw Unreachable(e);
        }
    }

    RefusedException Unreachable(GalleryStoreUnavailableException e) => RefusedException.Overloaded(
        $"Nothing was stored: {e.Message}. Everything stored before is kept; classification and search go on. Send this again " +
        "in a moment.", inference.Value.RetryAfterSeconds);

    public GalleryEntry? Get(long id)
    {
        _ = Current;
        lock (_lock) return _entries.GetValueOrDefault(id);
    }

    public (int Total, GalleryEntry[] Page) List(int offset, int limit)
    {
        _ = Current;
        lock (_lock) return (_entries.Count, [.. _entries.Values.Skip(offset).Take(limit)]);
    }

    public byte[]? Thumbnail(long id)
    {
        try
        {
            return Store.ReadThumbnail(id);
        }
        catch (GalleryStoreUnavailableException e)
        {
            throw RefusedException.Overloaded($"The thumbnail cannot be read: {e.Message}. Send this again in a moment.",
                inference.Value.RetryAfterSeconds);
        }
    }

    /// <summary>The k nearest gallery images to <paramref name="query"/>, a vector of <paramref name="generation"/>'s
    /// model, among that generation's vectors.</summary>
    public (GalleryEntry Entry, float Distance)[] Search(Generation generation, float[] query, int k) =>
        Describe(_searches.Search(generation.Searchable, query, k));

    /// <summary>The k nearest gallery images to gallery image <paramref name="id"/> (itself left out) in the generation
    /// now serving, and the model whose vectors were compared; null when there is no such image.</summary>
    public (string Fingerprint, (GalleryEntry Entry, float Distance)[] Hits)? SimilarTo(long id, int k)
    {
        var current = Current;
        var index = current.Searchable;
        return index.Get(id) is { } vector ? (current.Fingerprint, Describe(_searches.Search(index, vector, k, exclude: id))) : null;
    }

    (GalleryEntry Entry, float Distance)[] Describe(Neighbour[] hits)
    {
        lock (_lock)
            return [.. hits.Where(h => _entries.ContainsKey(h.Id)).Select(h => (_entries[h.Id], h.Distance))];
    }

    /// <summary>The row for a new image: the prepared square as PNG (lossless: the copy a new model re-embeds) and a thumbnail.</summary>
    public NewGalleryImage Describe(PreparedImage prepared, int width, int height, string sha256, string? label, string? note,
        string fingerprint, float[] features)
    {
        using var image = Image.LoadPixelData<Rgb24>(prepared.Rgb, prepared.Size, prepared.Size);
        var preparedPng = Png(image);
        if (prepared.Size > _options.ThumbnailSize)
            image.Mutate(x => x.Resize(_options.ThumbnailSize, _options.ThumbnailSize, KnownResamplers.Triangle));
        return new NewGalleryImage(label, note, sha256, width, height, preparedPng, prepared.Size, Png(image), fingerprint, features);
    }

    static byte[] Png(Image<Rgb24> image)
    {
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }

    static PreparedImage FromImage(Image<Rgb24> image)
    {
        var rgb = new byte[image.Width * image.Height * 3];
        image.CopyPixelDataTo(rgb);
        return new PreparedImage(rgb, image.Width);
    }

    static GalleryEntry Entry(GalleryRecord r) => new(r.Id, r.Label, r.Note, r.CreatedUtc, r.Sha256, r.Width, r.Height);

    public void Dispose() => _store?.Dispose();
}
