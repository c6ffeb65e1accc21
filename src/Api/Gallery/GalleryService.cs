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
/// The same happens when the model is replaced while serving (<see cref="SwitchModel"/>). Changes go to disk first,
/// then to memory.
/// </summary>
public sealed class GalleryService(ModelHost host, IOptions<GalleryOptions> options, IOptions<InferenceOptions> inference,
    IHostEnvironment env, ILogger<GalleryService> log) : IHostedService, IDisposable
{
    readonly GalleryOptions _options = options.Value;
    readonly Lock _lock = new();
    readonly SortedDictionary<long, GalleryEntry> _entries = [];
    GalleryStore? _store;
    volatile IndexState? _state;   // replaced whole, so a search sees one model's index and its fingerprint together
    volatile bool _loaded;

    /// <summary>The search index and the model whose vectors it holds. No index while a model without features serves
    /// (a profiled third-party classifier): the rows stay on disk, listed but not searchable.</summary>
    sealed record IndexState(FeatureIndex? Index, string Fingerprint, string ModelFile)
    {
        public FeatureIndex Searchable => Index ?? throw ProblemException.NoFeatures(ModelFile);
    }

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
        int rows, stale;
        lock (_lock) (rows, stale) = LoadIndex(classifier);
        _loaded = true;
        log.LogInformation("Gallery {Path}: {Count} images ({Stale} re-embedded for model {Fingerprint}) in {Ms} ms.",
            DatabasePath, rows, stale, classifier.Model.Fingerprint, watch.ElapsedMilliseconds);
        return Task.CompletedTask;
    }

    /// <summary>Reads every row, re-embeds those of another model and makes the index and the entries from them.
    /// Call under the lock. Returns the rows read and how many were stale.</summary>
    (int Rows, int Stale) LoadIndex(OnnxClassifier classifier)
    {
        var model = classifier.Model;
        var rows = _store!.ReadAll();
        if (!model.HasFeatures)
        {
            _entries.Clear();
            foreach (var r in rows) _entries[r.Id] = Entry(r);
            _state = new IndexState(null, model.Fingerprint, model.FileName);
            ApiMetrics.GalleryImages.Set(_entries.Count);
            return (rows.Count, 0);
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
        _state = new IndexState(index, model.Fingerprint, model.FileName);
        ApiMetrics.GalleryImages.Set(_entries.Count);
        return (rows.Count, stale.Count);
    }

    static bool IsStale(GalleryRecord r, ModelInfo model) => r.Fingerprint != model.Fingerprint || r.Features.Length != model.FeatureDim;

    /// <summary>
    /// Re-embeds the gallery for <paramref name="next"/>, then calls <paramref name="swap"/> (which puts the model in
    /// service) under the write lock, together with the new index: no write lands between the two, and no search
    /// sees one model's query against the other's vectors. Most of the work happens first, with writes still open
    /// (each re-embedded row is written back with the new fingerprint, so a crash part-way loses nothing: the next
    /// start re-embeds what is left); under the lock only rows added meanwhile are re-embedded.
    /// </summary>
    public void SwitchModel(OnnxClassifier next, Action swap)
    {
        if (_store is null)
        {
            swap();
            return;
        }
        var watch = Stopwatch.StartNew();
        if (next.Model.HasFeatures) Reembed(next, [.. _store.ReadAll().Where(r => IsStale(r, next.Model))]);
        var open = watch.ElapsedMilliseconds;
        int rows, stale;
        lock (_lock)
        {
            (rows, stale) = LoadIndex(next);
            swap();
        }
        log.LogInformation("Gallery: {Count} images re-embedded for model {Fingerprint} in {Ms} ms ({Held} ms with writes held, " +
            "{Late} added meanwhile).", rows, next.Model.Fingerprint, watch.ElapsedMilliseconds, watch.ElapsedMilliseconds - open, stale);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

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

    IndexState State => _state ?? throw ProblemException.Overloaded("The gallery is not loaded: the model is not ready. Check /health/ready.",
        inference.Value.RetryAfterSeconds);
    GalleryStore Store => _store ?? throw ProblemException.Overloaded("The gallery is not loaded: the model is not ready. Check /health/ready.",
        inference.Value.RetryAfterSeconds);

    /// <summary>Stores the images (one transaction), then indexes them. Returns the fingerprint of the model whose
    /// vectors were stored and the entries in order. Images whose vectors came from a model that was replaced while
    /// their request ran are re-embedded with the one now serving, from their prepared copies.</summary>
    public (string Fingerprint, GalleryEntry[] Created) Add(IReadOnlyList<NewGalleryImage> images)
    {
        var store = Store;
        lock (_lock)
        {
            var state = State;   // stable under the lock: SwitchModel replaces it under the same lock
            var index = state.Searchable;   // before anything is stored
            if (_entries.Count + images.Count > _options.MaxImages)
                throw new ProblemException(StatusCodes.Status409Conflict, "Gallery full",
                    $"The gallery holds {_entries.Count} of at most {_options.MaxImages} images (Gallery:MaxImages); these " +
                    $"{images.Count} would pass the limit. Nothing was added: delete images first, or raise the limit.");
            if (images.Any(m => m.Fingerprint != state.Fingerprint) && host.Classifier is { } current)
            {
                var fresh = Embed(current, [.. images.Select((m, i) => ((long)i, ((byte[], int)?)(m.PreparedPng, m.PreparedSize)))]).ToDictionary();
                images = [.. images.Select((m, i) => m.Fingerprint == state.Fingerprint ? m
                    : fresh.TryGetValue(i, out var f) ? m with { Fingerprint = state.Fingerprint, Features = f }
                    : throw new InvalidOperationException($"A new gallery image's prepared copy does not decode (image {i})."))];
            }
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
            return (state.Fingerprint, created);
        }
    }

    public bool Delete(long id)
    {
        var store = Store;
        lock (_lock)
        {
            if (!store.Delete(id)) return false;
            State.Index?.Remove(id);
            _entries.Remove(id);
            ApiMetrics.GalleryImages.Set(_entries.Count);
            return true;
        }
    }

    public GalleryEntry? Get(long id)
    {
        _ = State;
        lock (_lock) return _entries.GetValueOrDefault(id);
    }

    public (int Total, GalleryEntry[] Page) List(int offset, int limit)
    {
        _ = State;
        lock (_lock) return (_entries.Count, [.. _entries.Values.Skip(offset).Take(limit)]);
    }

    public byte[]? Thumbnail(long id) => Store.ReadThumbnail(id);

    /// <summary>The k nearest gallery images to <paramref name="query"/>, a vector of the model with
    /// <paramref name="fingerprint"/>; null when the gallery now holds another model's vectors (the model was replaced
    /// while the request ran: compute the query again).</summary>
    public (GalleryEntry Entry, float Distance)[]? Search(float[] query, string fingerprint, int k)
    {
        var state = State;
        return state.Fingerprint == fingerprint ? Describe(state.Searchable.Search(query, k)) : null;
    }

    /// <summary>The k nearest gallery images to gallery image <paramref name="id"/> (itself left out), and the model
    /// whose vectors were compared; null when there is no such image.</summary>
    public (string Fingerprint, (GalleryEntry Entry, float Distance)[] Hits)? SimilarTo(long id, int k)
    {
        var state = State;
        var index = state.Searchable;
        return index.Get(id) is { } vector ? (state.Fingerprint, Describe(index.Search(vector, k, exclude: id))) : null;
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
