using System.Diagnostics;
using System.Threading.Channels;
using AlexNet.Api.Http;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Inference;

/// <summary>One crop's answer: softmax probabilities (classes) and FC7 features (FeatureDim).</summary>
public sealed record Prediction(float[] Probabilities, float[] Features);

/// <summary>A hook the batcher awaits before each ONNX Runtime call (not the warm-up). None are registered in
/// production; tests register one to hold the model busy and fill the queue.</summary>
public interface IInferenceGate
{
    ValueTask WaitAsync(int batchSize, CancellationToken cancellationToken);
}

/// <summary>
/// Reads a bounded channel of crops and runs them through the model in batches (STYLE.md, "Background batching"):
/// wait for one crop, take more until MaxBatchSize or MaxBatchDelayMs, run (n, 3, S, S) once, hand each request its
/// row. A full channel answers 503 at once; a throwing Run fails only its batch; cancelled requests are skipped;
/// on stop new work is refused and what is queued is drained. Warms the model up before it reads anything.
/// </summary>
public sealed class InferenceBatcher : BackgroundService
{
    readonly ModelHost _host;
    readonly InferenceOptions _options;
    readonly IInferenceGate[] _gates;
    readonly ILogger<InferenceBatcher> _log;
    readonly Channel<Request> _queue;
    volatile bool _warmedUp;

    public InferenceBatcher(ModelHost host, IOptions<InferenceOptions> options, IEnumerable<IInferenceGate> gates,
        ILogger<InferenceBatcher> log)
    {
        _host = host;
        _options = options.Value;
        _gates = [.. gates];
        _log = log;
        _queue = Channel.CreateBounded<Request>(new BoundedChannelOptions(_options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,   // TryWrite then fails instead of dropping anything
        });
    }

    /// <summary>True once the model has answered a warm-up batch.</summary>
    public bool WarmedUp => _warmedUp;
    public int QueueLength => _queue.Reader.Count;

    /// <summary>Queues one crop (3 x S x S floats, 0..255). Throws a 503 <see cref="ProblemException"/> when the
    /// queue is full or the model isn't loaded.</summary>
    public Task<Prediction> EnqueueAsync(float[] chw, CancellationToken cancellationToken)
    {
        var classifier = _host.Require();
        if (chw.Length != classifier.RowLength)
            throw new ArgumentException($"A crop has {classifier.RowLength} floats, got {chw.Length}.", nameof(chw));
        var request = new Request(chw, cancellationToken);
        if (!_queue.Writer.TryWrite(request))
        {
            request.Dispose();
            ApiMetrics.Rejected.WithLabels("queue_full").Inc();
            throw ProblemException.Overloaded(
                $"The inference queue is full ({_options.QueueCapacity} crops waiting). Retry after {_options.RetryAfterSeconds} s.",
                _options.RetryAfterSeconds);
        }
        ApiMetrics.QueueLength.Set(_queue.Reader.Count);
        return request.Task;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        if (_host.Classifier is not { } classifier)
        {
            _queue.Writer.TryComplete();
            return;
        }
        WarmUp(classifier);
        var batch = new List<Request>(_options.MaxBatchSize);
        var input = new float[_options.MaxBatchSize * classifier.RowLength];   // (MaxBatchSize, 3, S, S), reused
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                await CollectAsync(batch, stoppingToken);
                await RunAsync(classifier, batch, input, stoppingToken);
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
            while (_queue.Reader.TryRead(out var r))
            {
                batch.Add(r);
                if (batch.Count == _options.MaxBatchSize || _queue.Reader.Count == 0)
                    await RunAsync(classifier, batch, input, CancellationToken.None);
            }
        }
    }

    void WarmUp(OnnxClassifier classifier)
    {
        // The first Run allocates and picks kernels; do it for a lone crop and a full batch before saying ready.
        var watch = Stopwatch.StartNew();
        foreach (var n in new[] { 1, _options.MaxBatchSize }.Distinct())
            classifier.Run(new float[n * classifier.RowLength], n);
        _warmedUp = true;
        ApiMetrics.Ready.Set(1);
        _log.LogInformation("Model warmed up on {Provider} in {Ms} ms (batches of 1 and {Max}).", classifier.Provider,
            watch.ElapsedMilliseconds, _options.MaxBatchSize);
    }

    async Task CollectAsync(List<Request> batch, CancellationToken stoppingToken)
    {
        var reader = _queue.Reader;
        var deadline = _options.MaxBatchDelayMs > 0 ? Stopwatch.GetTimestamp() + _options.MaxBatchDelayMs * Stopwatch.Frequency / 1000 : 0;
        while (batch.Count < _options.MaxBatchSize)
        {
            if (reader.TryRead(out var request))
            {
                if (!request.Task.IsCompleted) batch.Add(request);   // a cancelled request is already answered
                else request.Dispose();
                continue;
            }
            var left = deadline - Stopwatch.GetTimestamp();
            if (left <= 0) break;
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            wait.CancelAfter(TimeSpan.FromSeconds((double)left / Stopwatch.Frequency));
            try
            {
                if (!await reader.WaitToReadAsync(wait.Token)) break;
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
                break;   // the delay is over
            }
        }
    }

    async Task RunAsync(OnnxClassifier classifier, List<Request> batch, float[] input, CancellationToken stoppingToken)
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
            foreach (var gate in _gates) await gate.WaitAsync(n, stoppingToken);
            var row = classifier.RowLength;
            for (var i = 0; i < n; i++) batch[i].Chw.CopyTo(input.AsSpan(i * row, row));
            var watch = Stopwatch.StartNew();
            float[] probabilities, features;
            try
            {
                (probabilities, features) = classifier.Run(input, n);   // (n, classes), (n, FeatureDim)
            }
            catch (Exception e)
            {
                _log.LogError(e, "Inference failed for a batch of {Count}.", n);
                foreach (var r in batch) r.Fail(e);
                return;
            }
            ApiMetrics.BatchSeconds.Observe(watch.Elapsed.TotalSeconds);
            ApiMetrics.BatchSize.Observe(n);
            var (c, d) = (classifier.Model.Classes, classifier.Model.FeatureDim);
            for (var i = 0; i < n; i++)
                batch[i].Complete(new Prediction(probabilities.AsSpan(i * c, c).ToArray(), features.AsSpan(i * d, d).ToArray()));
        }
        finally
        {
            foreach (var r in batch)
            {
                r.Fail(ProblemException.Overloaded("The service is stopping.", _options.RetryAfterSeconds));   // no-op when answered
                r.Dispose();
            }
            batch.Clear();
        }
    }

    /// <summary>One crop waiting for the model; cancelling its token answers it at once and the batcher skips it.</summary>
    sealed class Request : IDisposable
    {
        readonly TaskCompletionSource<Prediction> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        readonly CancellationTokenRegistration _registration;

        public Request(float[] chw, CancellationToken cancellationToken)
        {
            Chw = chw;
            _registration = cancellationToken.Register(() => _done.TrySetCanceled(cancellationToken));
        }

        public float[] Chw { get; }
        public Task<Prediction> Task => _done.Task;
        public void Complete(Prediction p) => _done.TrySetResult(p);
        public void Fail(Exception e) => _done.TrySetException(e);
        public void Dispose() => _registration.Dispose();
    }
}
