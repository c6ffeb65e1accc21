using System.Diagnostics;
using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using AlexNet.Model.Imaging;
using Microsoft.Extensions.Options;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace AlexNet.Api.Gallery;

/// <summary>A gallery image's public description.</summary>
public sealed record GalleryEntry(long Id, string? Label, string? Note, DateTimeOffset CreatedUtc, string Sha256, int Width, int Height);

/// <summary>
/// The gallery: SQLite for durability, a <see cref="FeatureIndex"/> in memory for search. At start every row is
/// read; rows whose vectors came from another model are re-embedded from their stored normalised copy with the
/// current model (and written back) before the service is ready, so one index never mixes two models' features.
/// Changes go to disk first, then to memory.
/// </summary>
public sealed class GalleryService(ModelHost host, IOptions<GalleryOptions> options, IOptions<InferenceOptions> inference,
    IHostEnvironment env, ILogger<GalleryService> log) : IHostedService, IDisposable
{
    readonly GalleryOptions _options = options.Value;
    readonly Lock _lock = new();
    readonly SortedDictionary<long, GalleryEntry> _entries = [];
    GalleryStore? _store;
    FeatureIndex? _index;
    volatile bool _loaded;

    public string DatabasePath { get; } = OptionsRegistration.Resolve(env, options.Value.DatabasePath);
    public bool Loaded => _loaded;

    public int Count
    {
        get { lock (_lock) return _entries.Count; }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (host.Classifier is not { } classifier) return Task.CompletedTask;   // not ready; ModelHost says why
        var watch = Stopwatch.StartNew();
        _store = new GalleryStore(DatabasePath);
        if (_store.JournalMode != "wal")
            log.LogWarning("Gallery database {Path} runs in journal mode {Mode}, not WAL.", DatabasePath, _store.JournalMode);
        var model = classifier.Model;
        var rows = _store.ReadAll();
        var stale = rows.Where(r => r.Fingerprint != model.Fingerprint || r.Features.Length != model.FeatureDim).ToList();
        var fresh = Reembed(classifier, stale);
        _index = new FeatureIndex(model.FeatureDim, _options.SearchStorage, _options.RerankFactor, _options.SearchThreads);
        var staleIds = stale.Select(r => r.Id).ToHashSet();
        foreach (var r in rows)
        {
            // A stale row that could not be re-embedded stays on disk but out of the index: never two models' vectors.
            if (staleIds.Contains(r.Id) && !fresh.ContainsKey(r.Id)) continue;
            _index.Add(r.Id, fresh.TryGetValue(r.Id, out var f) ? f : r.Features);
            _entries[r.Id] = Entry(r);
        }
        ApiMetrics.GalleryImages.Set(_entries.Count);
        _loaded = true;
        log.LogInformation("Gallery {Path}: {Count} images ({Stale} re-embedded for model {Fingerprint}) in {Ms} ms.",
            DatabasePath, rows.Count, stale.Count, model.Fingerprint, watch.ElapsedMilliseconds);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Vectors for rows of another model, computed from their stored prepared copies (central crop).</summary>
    Dictionary<long, float[]> Reembed(OnnxClassifier classifier, List<GalleryRecord> stale)
    {
        var fresh = new Dictionary<long, float[]>();
        if (stale.Count == 0) return fresh;
        var model = classifier.Model;
        var pre = new ImagePreprocessor(model.ResizeSize, model.InputSize);
        var decoder = new SafeImageDecoder();
        var batch = Math.Max(1, inference.Value.MaxBatchSize);
        log.LogInformation("Re-embedding {Count} gallery images for model {Fingerprint}.", stale.Count, model.Fingerprint);
        foreach (var rows in stale.Chunk(batch))
        {
            var input = new float[rows.Length * pre.CropLength];   // (n, 3, S, S)
            var ids = new List<long>(rows.Length);
            foreach (var row in rows)
            {
                if (_store!.ReadPrepared(row.Id) is not { } stored) continue;   // deleted meanwhile
                var (png, size) = stored;
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
                    log.LogWarning("Gallery image {Id}: its stored copy does not decode ({Error}); it is left out of search.", row.Id, e.Message);
                    continue;
                }
                pre.WriteCrop(prepared, pre.Center, input.AsSpan(ids.Count * pre.CropLength, pre.CropLength));
                ids.Add(row.Id);
            }
            if (ids.Count == 0) continue;
            var (_, features) = classifier.Run(input, ids.Count);   // (n, FeatureDim)
            var updates = ids.Select((id, i) => (id, features.AsSpan(i * model.FeatureDim, model.FeatureDim).ToArray())).ToList();
            _store!.UpdateFeatures(updates, model.Fingerprint);
            foreach (var (id, f) in updates) fresh[id] = f;
        }
        return fresh;
    }

    FeatureIndex Index => _index ?? throw ProblemException.Overloaded("The gallery is not loaded: the model is not ready. Check /health/ready.",
        inference.Value.RetryAfterSeconds);
    GalleryStore Store => _store ?? throw ProblemException.Overloaded("The gallery is not loaded: the model is not ready. Check /health/ready.",
        inference.Value.RetryAfterSeconds);

    /// <summary>Stores the images (one transaction), then indexes them. Returns them in order.</summary>
    public GalleryEntry[] Add(IReadOnlyList<NewGalleryImage> images)
    {
        var (store, index) = (Store, Index);
        lock (_lock)
        {
            var now = DateTimeOffset.UtcNow;
            var ids = store.Insert(images, now);
            var created = new GalleryEntry[ids.Length];
            for (var i = 0; i < ids.Length; i++)
            {
                var m = images[i];
                index.Add(ids[i], m.Features);
                created[i] = _entries[ids[i]] = new GalleryEntry(ids[i], m.Label, m.Note, now, m.Sha256, m.Width, m.Height);
            }
            ApiMetrics.GalleryImages.Set(_entries.Count);
            return created;
        }
    }

    public bool Delete(long id)
    {
        var (store, index) = (Store, Index);
        lock (_lock)
        {
            if (!store.Delete(id)) return false;
            index.Remove(id);
            _entries.Remove(id);
            ApiMetrics.GalleryImages.Set(_entries.Count);
            return true;
        }
    }

    public GalleryEntry? Get(long id)
    {
        _ = Index;
        lock (_lock) return _entries.GetValueOrDefault(id);
    }

    public (int Total, GalleryEntry[] Page) List(int offset, int limit)
    {
        _ = Index;
        lock (_lock) return (_entries.Count, [.. _entries.Values.Skip(offset).Take(limit)]);
    }

    public byte[]? Thumbnail(long id) => Store.ReadThumbnail(id);

    public float[]? Features(long id) => Index.Get(id);

    /// <summary>The k nearest gallery images to <paramref name="query"/> with their descriptions.</summary>
    public (GalleryEntry Entry, float Distance)[] Search(float[] query, int k, long? exclude = null)
    {
        var hits = Index.Search(query, k, exclude);
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
