using System.Diagnostics;
using System.Threading.Channels;
using AlexNet.Api.Serving;
using AlexNet.Model.Imaging;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Inference;

/// <summary>One crop's answer: softmax probabilities (classes), FC7 features (FeatureDim), and the out-of-domain score
/// (1 is the threshold; null for a model without out-of-domain statistics).</summary>
public sealed record Prediction(float[] Probabilities, float[] Features, float? OodScore = null);

/// <summary>A hook the batcher awaits before each ONNX Runtime call it makes (warm-up runs are not its). None are registered in
/// production; tests register one to hold the model busy and fill the queue.</summary>
public interface IInferenceGate
{
    ValueTask WaitAsync(int batchSize, CancellationToken cancellationToken);
}

/// <summary>
/// Reads a bounded channel of crops and runs them through the model in batches:
/// wait for one crop, take more until MaxBatchSize or MaxBatchDelayMs, run (n, 3, S, S) once, hand each request its
/// row. A full channel answers 503 at once; a throwing Run fails only its batch; cancelled requests are skipped;
/// on stop new work is refused and what is queued is drained. Each crop carries the generation it was prepared for
/// (and a reference to it), so while a model swap is under way a batch never mixes two models: a crop of the other
/// model waits for the next batch.
/// <para>On the CPU provider a run takes a turn of the <see cref="CoreScheduler"/> (decodes wait), and while the batch has room it also waits for images still being decoded. Metrics:
/// alexnet_inference_queue_seconds (enqueue to run, per crop), alexnet_inference_batch_seconds (the ONNX Runtime
/// call), alexnet_inference_batch_size. Crops given as a prepared image and a window are written straight into
/// the batch's input, and the outputs land in reused buffers: per crop only its answer is allocated.</para>
/// </summary>
public sealed class InferenceBatcher : BackgroundService
{
    readonly CoreScheduler _scheduler;
    readonly InferenceOptions _options;
    readonly IInferenceGate[] _gates;
    readonly ILogger<InferenceBatcher> _log;
    readonly Channel<Request> _queue;
    Request? _carried;     // read while a batch of another model was being collected; it starts the next batch
    float[] _input = [];   // (MaxBatchSize, 3, S, S), reused; grows if a new model has a larger input
    float[] _probabilities = [], _features = [], _oodScores = [];   // (MaxBatchSize, classes), (MaxBatchSize, FeatureDim), reused

    public InferenceBatcher(CoreScheduler scheduler, IOptions<InferenceOptions> options, IEnumerable<IInferenceGate> gates,
        ILogger<InferenceBatcher> log)
    {
        _scheduler = scheduler;
        _options = options.Value;
        _gates = [.. gates];
        _log = log;
        _queue = Channel.CreateBounded<Request>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,   // TryWrite then fails instead of dropping anything
        });
    }

    public int QueueLength => _queue.Reader.Count;

    /// <summary>Queues the crop <paramref name="window"/> of <paramref name="image"/> (prepared at the model's
    /// ResizeSize) for <paramref name="generation"/>'s model, which the caller holds (a <see cref="GenerationLease"/>).
    /// The batcher writes the crop into the batch's input itself, so no crop buffer is allocated. Throws a 503
    /// <see cref="RefusedException"/> when the queue is full.</summary>
    public Task<Prediction> EnqueueAsync(Generation generation, PreparedImage image, CropWindow window, CancellationToken cancellationToken)
    {
        var (resize, input) = (generation.Model.ResizeSize, generation.Model.InputSize);
        if (image.Size != resize || image.Rgb.Length != image.Length)
            throw new ArgumentException($"The model needs images prepared at {resize}, got {image.Size}.", nameof(image));
        if (window.X < 0 || window.Y < 0 || window.X + input > resize || window.Y + input > resize)
            throw new ArgumentOutOfRangeException(nameof(window), $"Crop at ({window.X}, {window.Y}) leaves the {resize}x{resize} image.");
        return Enqueue(new Request(generation, image, window, cancellationToken));
    }

    /// <summary>Queues one row the client gave as a tensor (the Open Inference Protocol's FP32 input): (3, S, S) floats
    /// in the model's input form, copied into the batch as they are. Throws a 503 <see cref="RefusedException"/> when the
    /// queue is full.</summary>
    public Task<Prediction> EnqueueRowAsync(Generation generation, ReadOnlyMemory<float> row, CancellationToken cancellationToken)
    {
        var length = 3 * generation.Model.InputSize * generation.Model.InputSize;
        if (row.Length != length)
            throw new ArgumentException($"The model takes rows of {length} floats, got {row.Length}.", nameof(row));
        return Enqueue(new Request(generation, row, cancellationToken));
    }

    Task<Prediction> Enqueue(Request request)
    {
        if (!_queue.Writer.TryWrite(request))
        {
            request.Dispose();
            ApiMetrics.Rejected.WithLabels("queue_full").Inc();
            throw RefusedException.Overloaded(
                $"The inference queue is full ({_options.QueueCapacity} crops waiting). Retry after {_options.RetryAfterSeconds} s.",
                _options.RetryAfterSeconds);
        }
        ApiMetrics.QueueLength.Set(_queue.Reader.Count);
        return request.Task;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        var batch = new List<Request>(_options.MaxBatchSize);
        try
        {
            while (_carried is not null || await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                await CollectAsync(batch, stoppingToken);
                await RunAsync(batch, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            // Drain: refuse new work, answer what was accepted.
            _queue.Writer.TryComplete();
            ApiMetrics.Ready.Set(0);
            while (_carried is not null || _queue.Reader.Count > 0)
            {
                await CollectAsync(batch, CancellationToken.None, wait: false);
                await RunAsync(batch, CancellationToken.None);
            }
        }
    }

    /// <summary>Fills <paramref name="batch"/> with crops of one generation: the carried one first, then the queue.</summary>
    async Task CollectAsync(List<Request> batch, CancellationToken stoppingToken, bool wait = true)
    {
        var reader = _queue.Reader;
        var deadline = wait && _options.MaxBatchDelayMs > 0 ? Stopwatch.GetTimestamp() + _options.MaxBatchDelayMs * Stopwatch.Frequency / 1000 : 0;
        var decodesUntil = Stopwatch.GetTimestamp() + (long)(CoreScheduler.MaxWaitForDecodes.TotalSeconds * Stopwatch.Frequency);
        while (batch.Count < _options.MaxBatchSize)
        {
            Request? request = null;
            if (_carried is not null) (request, _carried) = (_carried, null);
            else if (reader.TryRead(out var read)) request = read;
            if (request is not null)
            {
                if (request.Task.IsCompleted) request.Dispose();   // a cancelled request is already answered
                else if (batch.Count > 0 && request.Generation != batch[0].Generation)
                {
                    _carried = request;   // another model's crop: it starts the next batch
                    break;
                }
                else batch.Add(request);
                continue;
            }
            if (wait && batch.Count > 0 && batch[0].Generation.Classifier.Provider == ExecutionProvider.Cpu && _scheduler.Pending > 0
                && Stopwatch.GetTimestamp() < decodesUntil)
            {
                // Images being decoded will join this batch: wait for a crop, for the count to fall, or for the bound.
                var fell = _scheduler.PendingFell;
                if (_scheduler.Pending == 0) continue;
                using var bound = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                bound.CancelAfter(TimeSpan.FromSeconds((double)(decodesUntil - Stopwatch.GetTimestamp()) / Stopwatch.Frequency));
                try
                {
                    var crop = reader.WaitToReadAsync(bound.Token).AsTask();
                    if (await Task.WhenAny(crop, fell) == crop && !await crop) break;
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                }
                continue;
            }
            var left = deadline - Stopwatch.GetTimestamp();
            if (left <= 0) break;
            using var delay = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            delay.CancelAfter(TimeSpan.FromSeconds((double)left / Stopwatch.Frequency));
            try
            {
                if (!await reader.WaitToReadAsync(delay.Token)) break;
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                break;   // the delay is over
            }
        }
    }

    async Task RunAsync(List<Request> batch, CancellationToken stoppingToken)
    {
        ApiMetrics.QueueLength.Set(_queue.Reader.Count);
        try
        {
            batch.RemoveAll(r =>
            {
                if (!r.Task.IsCompleted) return false;
                r.Dispose();
                return true;
            });
            if (batch.Count == 0) return;
            var n = batch.Count;
            var classifier = batch[0].Generation.Classifier;   // each request holds a reference, so it lives until they are disposed
            foreach (var gate in _gates) await gate.WaitAsync(n, stoppingToken);
            var (row, c, d) = (classifier.RowLength, classifier.Model.Classes, classifier.Model.FeatureDim);
            var max = _options.MaxBatchSize;
            if (_input.Length < max * row) _input = new float[max * row];
            if (_probabilities.Length < max * c) _probabilities = new float[max * c];
            if (_features.Length < max * d) _features = new float[max * d];
            if (_oodScores.Length < max) _oodScores = new float[max];
            var (input, probabilities, features) = (_input, _probabilities, _features);
            var pre = classifier.Model.Preprocessor;
            for (var i = 0; i < n; i++) batch[i].WriteTo(pre, input.AsSpan(i * row, row));
            using (classifier.Provider == ExecutionProvider.Cpu ? await _scheduler.TurnAsync(stoppingToken) : default)
            {
                var start = Stopwatch.GetTimestamp();
                foreach (var r in batch) ApiMetrics.QueueSeconds.Observe(Stopwatch.GetElapsedTime(r.Enqueued, start).TotalSeconds);
                try
                {
                    classifier.Run(input, n, probabilities, features, _oodScores);   // (n, classes), (n, FeatureDim), (n)
                }
                catch (Exception e)
                {
                    _log.LogError(e, "Inference failed for a batch of {Count}.", n);
                    foreach (var r in batch) r.Fail(e);
                    return;
                }
                ApiMetrics.BatchSeconds.Observe(Stopwatch.GetElapsedTime(start).TotalSeconds);
            }
            ApiMetrics.BatchSize.Observe(n);
            for (var i = 0; i < n; i++)
                batch[i].Complete(new Prediction(probabilities.AsSpan(i * c, c).ToArray(), features.AsSpan(i * d, d).ToArray(),
                    classifier.Model.DomainStats is null ? null : _oodScores[i]));
        }
        finally
        {
            foreach (var r in batch)
            {
                r.Fail(RefusedException.Overloaded("The service is stopping.", _options.RetryAfterSeconds));   // no-op when answered
                r.Dispose();
            }
            batch.Clear();
        }
    }

    /// <summary>One crop waiting for the model; cancelling its token answers it at once and the batcher skips it.
    /// Holds a reference to its generation until disposed, so a swapped-out model lives until its crops have run.</summary>
    sealed class Request : IDisposable
    {
        readonly TaskCompletionSource<Prediction> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly CancellationTokenRegistration _registration;
        int _disposed;

        readonly PreparedImage? _image;   // null for a row given as a tensor
        readonly CropWindow _window;
        readonly ReadOnlyMemory<float> _row;

        /// <summary>The crop <paramref name="window"/> of a prepared image.</summary>
        public Request(Generation generation, PreparedImage image, CropWindow window, CancellationToken cancellationToken)
            : this(generation, cancellationToken) => (_image, _window) = (image, window);

        /// <summary>A (3, S, S) row given as it is.</summary>
        public Request(Generation generation, ReadOnlyMemory<float> row, CancellationToken cancellationToken)
            : this(generation, cancellationToken) => _row = row;

        Request(Generation generation, CancellationToken cancellationToken)
        {
            if (!generation.TryAddRef())
                throw new InvalidOperationException("The generation was released; the caller must hold a GenerationLease while it enqueues.");
            Generation = generation;
            _registration = cancellationToken.Register(() => _done.TrySetCanceled(cancellationToken));
        }

        public Generation Generation { get; }
        /// <summary>When it was queued (Stopwatch ticks), for alexnet_inference_queue_seconds.</summary>
        public long Enqueued { get; } = Stopwatch.GetTimestamp();

        /// <summary>Writes the crop as (3, S, S) floats into its row of the batch.</summary>
        public void WriteTo(ImagePreprocessor pre, Span<float> row)
        {
            if (_image is null) _row.Span.CopyTo(row);
            else pre.WriteCrop(_image, _window, row);
        }
        public Task<Prediction> Task => _done.Task;
        public void Complete(Prediction p) => _done.TrySetResult(p);
        public void Fail(Exception e) => _done.TrySetException(e);
        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            _registration.Dispose();
            Generation.Release();
        }
    }
}
