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
/// The gallery: an <see cref="IGalleryStore"/> for durability (SQLite here), a <see cref="FeatureIndex"/> in memory for search, built for each model put
/// in service and published with it as one <see cref="Generation"/>. Rows whose vectors came from another model are
/// re-embedded from their stored normalised copy with the new model (and written back) before it serves, so one
/// index never mixes two models' features (<see cref="SwitchModel"/>, at start and on reload). Changes go to disk
/// first, then to the index of the generation in service.
/// </summary>
public sealed class GalleryService(ServingHost host, IOptions<GalleryOptions> options, IOptions<InferenceOptions> inference,
    IHostEnvironment env, ILogger<GalleryService> log) : IDisposable
{
    readonly GalleryOptions _options = options.Value;
    readonly SearchCoalescer _searches = new(options.Value.SearchBatchMax, TimeSpan.FromMilliseconds(options.Value.SearchBatchDelayMs));
    readonly Lock _lock = new();   // held while a generation is published, so no write lands between index and swap
    readonly SortedDictionary<long, GalleryEntry> _entries = [];
    IGalleryStore? _store;

    public string DatabasePath { get; } = OptionsRegistration.Resolve(env, options.Value.DatabasePath);

    public int Count
    {
        get { lock (_lock) return _entries.Count; }
    }

    /// <summary>Opens (or creates) the database; throws naming the path when it cannot.</summary>
    public void Open()
    {
        var sqlite = new SqliteGalleryStore(DatabasePath);
        if (sqlite.JournalMode != "wal")
            log.LogWarning("Gallery database {Path} runs in journal mode {Mode}, not WAL.", DatabasePath, sqlite.JournalMode);
        _store = sqlite;
    }

    /// <summary>Reads every row, re-embeds those of another model and makes the index and the entries from them.
    /// Call under the lock. Returns the index (null for a model without features: the rows stay on disk, listed
    /// but not searchable), the rows read and how many were stale.</summary>
    (FeatureIndex? Index, int Rows, int Stale) LoadIndex(OnnxClassifier classifier)
    {
        var model = classifier.Model;
        var skipped = 0;
        var rows = _store!.ReadAll((id, why) =>
        {
            if (++skipped <= 10) log.LogWarning("Gallery {Path}: row {Id} does not read ({Why}); it is left out.", DatabasePath, id, why);
        });
        if (skipped > 0) log.LogWarning("Gallery {Path}: {Skipped} rows left out because they do not read.", DatabasePath, skipped);
        if (!model.HasFeatures)
        {
            _entries.Clear();
            foreach (var r in rows) _entries[r.Id] = Entry(r);
            ApiMetrics.GalleryImages.Set(_entries.Count);
            return (null, rows.Count, 0);
        }
        var stale = rows.Where(r => IsStale(r, model)).ToList();
        var fresh = Reembed(classifier, stale);
        var index = new FeatureIndex(model.FeatureDim, _options.SearchStorage, _options.RerankFactor, _options.SearchThreads);
        var staleIds = stale.Select(r => r.Id).ToHashSet();
        _entries.Clear();
        foreach (var r in rows)
        {
            // A stale row that could not be re-embedded stays on disk but out of the index: never two models' vectors.
            if (staleIds.Contains(r.Id) && !fresh.ContainsKey(r.Id)) continue;
            index.Add(r.Id, fresh.TryGetValue(r.Id, out var f) ? f : r.Features);
            _entries[r.Id] = Entry(r);
        }
        ApiMetrics.GalleryImages.Set(_entries.Count);
        return (index, rows.Count, stale.Count);
    }

    static bool IsStale(GalleryRecord r, ModelInfo model) => r.Fingerprint != model.Fingerprint || r.Features.Length != model.FeatureDim;

    /// <summary>
    /// Builds the index of <paramref name="next"/>'s vectors, re-embedding the rows of other models, then calls
    /// <paramref name="publish"/> (which puts model and index in service as one generation) under the write lock: no
    /// write lands between the two. Most of the work happens first, with writes still open (each re-embedded row is
    /// written back with the new fingerprint, so a crash part-way loses nothing: the next start re-embeds what is
    /// left); under the lock only rows added meanwhile are re-embedded.
    /// </summary>
    public void SwitchModel(OnnxClassifier next, Action<FeatureIndex?> publish)
    {
        var store = _store ?? throw new InvalidOperationException("The gallery is not open.");
        var watch = Stopwatch.StartNew();
        if (next.Model.HasFeatures) Reembed(next, [.. store.ReadAll().Where(r => IsStale(r, next.Model))]);
        var open = watch.ElapsedMilliseconds;
        lock (_lock)
        {
            var (index, rows, late) = LoadIndex(next);
            publish(index);
            log.LogInformation("Gallery {Path}: {Count} images indexed for model {Fingerprint} in {Ms} ms ({Held} ms with writes " +
                "held, {Late} re-embedded then).", DatabasePath, rows, next.Model.Fingerprint, watch.ElapsedMilliseconds,
                watch.ElapsedMilliseconds - open, late);
        }
    }

    /// <summary>Vectors for rows of another model, computed from their stored prepared copies (central crop) and
    /// written back with the model's fingerprint.</summary>
    Dictionary<long, float[]> Reembed(OnnxClassifier classifier, List<GalleryRecord> stale)
    {
        if (stale.Count == 0) return [];
        log.LogInformation("Re-embedding {Count} gallery images for model {Fingerprint}.", stale.Count, classifier.Model.Fingerprint);
        var fresh = new Dictionary<long, float[]>();
        foreach (var rows in stale.Chunk(Math.Max(1, inference.Value.MaxBatchSize)))
        {
            var updates = Embed(classifier, [.. rows.Select(r => (r.Id, _store!.ReadPrepared(r.Id)))]);   // null: deleted meanwhile
            _store!.UpdateFeatures(updates, classifier.Model.Fingerprint);
            foreach (var (id, f) in updates) fresh[id] = f;
        }
        return fresh;
    }

    /// <summary>FC7 vectors of stored prepared copies (PNG, and the resize size they were made at) with
    /// <paramref name="classifier"/>, one ONNX Runtime call. Copies that are missing or do not decode are left out.</summary>
    List<(long Id, float[] Features)> Embed(OnnxClassifier classifier, IReadOnlyList<(long Id, (byte[] Png, int Size)? Stored)> items)
    {
        var model = classifier.Model;
        var pre = model.Preprocessor;
        var decoder = new SafeImageDecoder();
        var input = new float[items.Count * pre.CropLength];   // (n, 3, S, S)
        var ids = new List<long>(items.Count);
        foreach (var (id, stored) in items)
        {
            if (stored is not var (png, size)) continue;
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

    /// <summary>Stores the images (one transaction), then indexes them. Returns the fingerprint of the model whose
    /// vectors were stored and the entries in order. Images whose vectors came from a model that was replaced while
    /// their request ran are re-embedded with the one now serving, from their prepared copies.</summary>
    public (string Fingerprint, GalleryEntry[] Created) Add(IReadOnlyList<NewGalleryImage> images)
    {
        var store = Store;
        lock (_lock)
        {
            var current = Current;   // stable under the lock: SwitchModel publishes under the same lock
            var index = current.Searchable;   // before anything is stored
            if (_entries.Count + images.Count > _options.MaxImages)
                throw new RefusedException(Refusal.Conflict, "Gallery full",
                    $"The gallery holds {_entries.Count} of at most {_options.MaxImages} images (Gallery:MaxImages); these " +
                    $"{images.Count} would pass the limit. Nothing was added: delete images first, or raise the limit.");
            if (images.Any(m => m.Fingerprint != current.Fingerprint))
            {
                var fresh = Embed(current.Classifier, [.. images.Select((m, i) => ((long)i, ((byte[], int)?)(m.PreparedPng, m.PreparedSize)))]).ToDictionary();
                images = [.. images.Select((m, i) => m.Fingerprint == current.Fingerprint ? m
                    : fresh.TryGetValue(i, out var f) ? m with { Fingerprint = current.Fingerprint, Features = f }
                    : throw new InvalidOperationException($"A new gallery image's prepared copy does not decode (image {i})."))];
            }
            var now = DateTimeOffset.UtcNow;
            var ids = Write(() => store.Insert(images, now));
            var created = new GalleryEntry[ids.Length];
            for (var i = 0; i < ids.Length; i++)
            {
                var m = images[i];
                index.Add(ids[i], m.Features);
                created[i] = _entries[ids[i]] = new GalleryEntry(ids[i], m.Label, m.Note, now, m.Sha256, m.Width, m.Height);
            }
            ApiMetrics.GalleryImages.Set(_entries.Count);
            return (current.Fingerprint, created);
        }
    }

    public bool Delete(long id)
    {
        var store = Store;
        lock (_lock)
        {
            if (!Write(() => store.Delete(id))) return false;
            host.Current?.Index?.Remove(id);
            _entries.Remove(id);
            ApiMetrics.GalleryImages.Set(_entries.Count);
            return true;
        }
    }

    /// <summary>Why the last write failed for want of space; null once a write succeeds again. Readiness reports it.</summary>
    public string? StoreFault { get; private set; }

    /// <summary>A write to the store; a full disk is a 507 refusal (nothing was stored) and marks the store degraded.</summary>
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
            log.LogError("Gallery {Path}: a write failed for want of space: {Error}", DatabasePath, e.Message);
            throw new RefusedException(Refusal.InsufficientStorage, "Insufficient storage",
                "The gallery's disk is full, so nothing was stored (everything stored before is kept). Free space on the volume of " +
                "Gallery:DatabasePath, then send this again. Classification and search go on.");
        }
    }

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

    public byte[]? Thumbnail(long id) => Store.ReadThumbnail(id);

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
