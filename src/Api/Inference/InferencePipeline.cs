using System.Numerics.Tensors;
using System.Security.Cryptography;
using AlexNet.Api.Serving;
using AlexNet.Model.Imaging;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Inference;

/// <summary>An image's answer, whether it came from the cache, the SHA-256 of its bytes (hex), and the decoded image
/// when the caller asked to keep it (a gallery add stores it).</summary>
public sealed record Analysis(Prediction Prediction, bool Cached, string Sha256, DecodedImage? Image = null);

/// <summary>A decoded upload after the paper's first step, and its size as decoded (after EXIF orientation).</summary>
public sealed record DecodedImage(PreparedImage Prepared, int Width, int Height);

/// <summary>
/// Bytes to answers, as training sees images: the shared <see cref="SafeImageDecoder"/> (in the
/// <see cref="CoreScheduler"/> decode slots), <see cref="ImagePreprocessor.Prepare"/>, the central crop or the paper's 10 crops
/// through the <see cref="InferenceBatcher"/>, 10-crop answers averaged. Answers are cached by SHA-256 of the bytes,
/// the model fingerprint and the crop mode; an answer counts as cached (the response's <c>cached</c> flags and
/// X-Cache) only for the client address that produced the entry, so one client cannot learn which images another
/// sent. Every method takes the generation the request holds
/// (<see cref="ServingHost.Acquire"/>), so a model swap mid-request cannot mix two models in one answer. Classify,
/// features, search and gallery adds all come through <see cref="AnalyzeAsync(Generation, IReadOnlyList{byte[]}, bool, bool, string, CancellationToken)"/>.
/// </summary>
public sealed class InferencePipeline : IDisposable
{
    readonly InferenceBatcher _batcher;
    readonly MemoryCache _cache;   // our own, so its size limit binds only our entries
    readonly CacheOptions _cacheOptions;
    readonly SafeImageDecoder _decoder;
    readonly CoreScheduler _scheduler;
    readonly int _maxAspectRatio;

    public InferencePipeline(InferenceBatcher batcher, CoreScheduler scheduler, IOptions<UploadOptions> uploads,
        IOptions<CacheOptions> cacheOptions)
    {
        _batcher = batcher;
        _cacheOptions = cacheOptions.Value;
        _cache = new MemoryCache(new MemoryCacheOptions { SizeLimit = (long)_cacheOptions.SizeLimitMegabytes << 20 });
        _decoder = new SafeImageDecoder(new DecoderLimits
        {
            MaxSide = uploads.Value.MaxSide,
            MaxPixels = uploads.Value.MaxPixels,
            DecodeTimeout = TimeSpan.FromMilliseconds(uploads.Value.DecodeTimeoutMs),
        });
        _maxAspectRatio = uploads.Value.MaxAspectRatio;
        _scheduler = scheduler;
    }

    /// <summary>Answers for several images at once (their crops share batches). Throws <see cref="RefusedException"/>.</summary>
    /// <param name="keepImage">Decode even when the answer is cached, and return the decoded image (a gallery add stores it).</param>
    /// <param name="client">Who asks (the client address): a cached answer is reported as cached only to its producer.</param>
    public Task<Analysis[]> AnalyzeAsync(Generation generation, IReadOnlyList<byte[]> images, bool tenCrop, bool keepImage, string client,
        CancellationToken ct) =>
        Task.WhenAll(images.Select((bytes, i) => AnalyzeAsync(generation, bytes, tenCrop, keepImage, client, i, images.Count, ct)));

    async Task<Analysis> AnalyzeAsync(Generation generation, byte[] bytes, bool tenCrop, bool keepImage, string client, int index, int count,
        CancellationToken ct)
    {
        var sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
        var key = $"{generation.Fingerprint}|{(tenCrop ? "10crop" : "center")}|{sha256}";
        if (!keepImage && _cacheOptions.Enabled && _cache.TryGetValue(key, out CachedAnswer? hit) && hit is not null)
        {
            ApiMetrics.Cache.WithLabels("hit").Inc();
            return new Analysis(hit.Prediction, Cached: hit.Producer == client, sha256);
        }
        if (_cacheOptions.Enabled && !keepImage) ApiMetrics.Cache.WithLabels("miss").Inc();
        using var pending = _scheduler.Arrive();   // until its crops are queued, a batch may wait for it
        var decoded = await PrepareAsync(generation.Model, bytes, index, count, ct);
        var prediction = await PredictAsync(generation, decoded.Prepared, tenCrop, ct, pending);
        Remember(key, new CachedAnswer(prediction, client));
        return new Analysis(prediction, Cached: false, sha256, keepImage ? decoded : null);
    }

    /// <summary>Decodes and applies the paper's first step (shorter side to ResizeSize, central square).</summary>
    async Task<DecodedImage> PrepareAsync(ModelInfo model, byte[] bytes, int index, int count, CancellationToken ct)
    {
        using var slot = await _scheduler.DecodeAsync(ct);
        try
        {
            using var image = _decoder.Decode(bytes, ct);   // stops at Uploads:DecodeTimeoutMs (JPEG) or when the client goes
            CheckShape(image.Width, image.Height, model.ResizeSize, index, count);
            return new DecodedImage(model.Preprocessor.Prepare(image), image.Width, image.Height);
        }
        catch (ImageRejectedException e)
        {
            throw RefusedException.From(e, index, count);
        }
    }

    /// <summary>The paper's first step scales the shorter side to the resize size, so a thin image grows by its aspect
    /// ratio (8000x1 to 512,000x64 at resize 64): past Uploads:MaxAspectRatio it is refused before resizing.</summary>
    void CheckShape(int width, int height, int resizeSize, int index, int count)
    {
        var (longer, shorter) = (Math.Max(width, height), Math.Min(width, height));
        if (longer <= (long)shorter * _maxAspectRatio) return;
        var which = count > 1 ? $"Image {index} (0-based): " : "";
        throw new RefusedException(Refusal.Unprocessable, "Image shape not accepted",
            $"{which}The image is {width}x{height}, an aspect ratio of {(double)longer / shorter:0.#}:1; the limit is " +
            $"{_maxAspectRatio}:1, because the shorter side is scaled to {resizeSize} pixels before the central crop. " +
            "Crop it closer to square and send it again.");
    }

    /// <summary>The central crop's answer, or the mean of the 10 crops' probabilities and features. <paramref name="pending"/>
    /// (from <see cref="CoreScheduler.Arrive"/>) is let go once the crops are queued.</summary>
    async Task<Prediction> PredictAsync(Generation generation, PreparedImage prepared, bool tenCrop, CancellationToken ct, IDisposable pending)
    {
        var model = generation.Model;
        var pre = model.Preprocessor;
        IReadOnlyList<CropWindow> crops = tenCrop ? pre.TenCrops : [pre.Center];
        // If one crop is refused (queue full), cancel the ones already queued.
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var answers = new List<Task<Prediction>>(crops.Count);
        try
        {
            foreach (var crop in crops)
                answers.Add(_batcher.EnqueueAsync(generation, prepared, crop, linked.Token));   // written into the batch there
        }
        catch
        {
            await linked.CancelAsync();
            throw;
        }
        finally
        {
            pending.Dispose();
        }
        var results = await Task.WhenAll(answers);
        if (results.Length == 1) return results[0];
        var probabilities = new float[model.Classes];
        var features = new float[model.FeatureDim];
        foreach (var a in results)
        {
            TensorPrimitives.Add(probabilities, a.Probabilities, probabilities);
            TensorPrimitives.Add(features, a.Features, features);
        }
        TensorPrimitives.Divide(probabilities, results.Length, probabilities);
        TensorPrimitives.Divide(features, results.Length, features);
        // The crops' mean score: one odd corner does not flag an image the other nine crops find ordinary.
        float? ood = results.All(r => r.OodScore is not null) ? results.Average(r => r.OodScore!.Value) : null;
        return new Prediction(probabilities, features, ood);
    }

    /// <summary>Answers for <paramref name="n"/> rows a client sent as a tensor, (n, 3, S, S) in the model's input form
    /// (the Open Inference Protocol's FP32 input): no decoding, no cache; the rows share batches with image crops.
    /// Throws <see cref="RefusedException"/> (503 when the queue is full; rows already queued are then cancelled).</summary>
    public async Task<Prediction[]> AnalyzeRowsAsync(Generation generation, float[] rows, int n, CancellationToken ct)
    {
        var length = rows.Length / n;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var answers = new List<Task<Prediction>>(n);
        try
        {
            for (var i = 0; i < n; i++) answers.Add(_batcher.EnqueueRowAsync(generation, rows.AsMemory(i * length, length), linked.Token));
        }
        catch
        {
            await linked.CancelAsync();
            throw;
        }
        return await Task.WhenAll(answers);
    }

    sealed record CachedAnswer(Prediction Prediction, string Producer);

    void Remember(string key, CachedAnswer answer)
    {
        if (!_cacheOptions.Enabled) return;
        _cache.Set(key, answer, new MemoryCacheEntryOptions
        {
            Size = 4L * (answer.Prediction.Probabilities.Length + answer.Prediction.Features.Length) + 128,   // bytes, roughly
        });
    }

    public void Dispose() => _cache.Dispose();
}
