namespace AlexNet.Api.Inference;

/// <summary>
/// Shares the cores between decoding uploads and running the model on the CPU provider. Both at once was slower
/// than each in turn: ONNX Runtime splits a layer into one piece per core, and a piece whose core is busy decoding
/// holds up the whole layer (at concurrency 16 the batches ran about half as fast while decodes ran beside them).
/// So a model run on the CPU takes a turn: no new decode starts while it waits or runs, and it starts once the
/// decodes in progress end (or after <see cref="MaxTurnWaitForDecodes"/>, whichever comes first). Before a turn the batcher also waits, while its batch has room, for the images already
/// accepted and being decoded (<see cref="Pending"/>, at most <see cref="MaxWaitForDecodes"/>), so that a burst of
/// uploads becomes one full batch rather than one batch per finished decode. With CUDA there are no turns: the GPU
/// runs the model while the cores decode. Decodes run at most MaxConcurrentDecodes at once (0: one per core).
/// </summary>
public sealed class CoreScheduler(int maxDecodes)
{
    /// <summary>How long a batch waits for images still being decoded; a decode of a large upload may take longer.</summary>
    public static readonly TimeSpan MaxWaitForDecodes = TimeSpan.FromMilliseconds(100);
    /// <summary>How long a model turn waits for the decodes in progress to end before it runs beside them: a slow
    /// decode (a large or hostile image, until the decoder's deadline stops it) must not hold every request's model
    /// run.</summary>
    public static readonly TimeSpan MaxTurnWaitForDecodes = TimeSpan.FromMilliseconds(500);

    readonly Lock _lock = new();
    readonly Queue<TaskCompletionSource> _decodeWaiters = new();
    TaskCompletionSource? _turnWaiter;    // the model, waiting for the decodes in progress to end
    TaskCompletionSource _pendingChanged = NewSignal();
    int _decoding, _pending;
    bool _turn;

    public int MaxDecodes { get; } = maxDecodes > 0 ? maxDecodes : Environment.ProcessorCount;

    /// <summary>Images accepted and not yet queued for the model: waiting to decode, decoding, or cropping.</summary>
    public int Pending
    {
        get { lock (_lock) return _pending; }
    }

    /// <summary>Completes when <see cref="Pending"/> next falls.</summary>
    public Task PendingFell
    {
        get { lock (_lock) return _pendingChanged.Task; }
    }

    /// <summary>Counts one image as pending until the returned value is disposed (after its crops are queued).</summary>
    public PendingImage Arrive()
    {
        lock (_lock) _pending++;
        return new PendingImage(this);
    }

    /// <summary>Waits for a decode slot; none is given while the model has its turn.</summary>
    public async ValueTask<DecodeSlot> DecodeAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource granted;
        lock (_lock)
        {
            if (!_turn && _decoding < MaxDecodes && _decodeWaiters.Count == 0)
            {
                _decoding++;
                return new DecodeSlot(this);
            }
            granted = NewSignal();
            _decodeWaiters.Enqueue(granted);
            if (!_turn) Grant();   // the queue may hold only cancelled waiters
        }
        try
        {
            await granted.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Granted meanwhile: the slot is ours and must be handed on. Not granted: the queue skips us later.
            if (!granted.TrySetCanceled(cancellationToken)) EndDecode();
            throw;
        }
        return new DecodeSlot(this);
    }

    /// <summary>Stops new decodes and waits for those in progress; the model runs until the turn is disposed.</summary>
    public async ValueTask<ModelTurn> TurnAsync(CancellationToken cancellationToken)
    {
        TaskCompletionSource? idle = null;
        lock (_lock)
        {
            _turn = true;
            if (_decoding > 0) idle = _turnWaiter = NewSignal();
        }
        try
        {
            if (idle is not null) await Task.WhenAny(idle.Task, Task.Delay(MaxTurnWaitForDecodes, cancellationToken));
            cancellationToken.ThrowIfCancellationRequested();
        }
        catch
        {
            EndTurn();
            throw;
        }
        return new ModelTurn(this);
    }

    void EndDecode()
    {
        lock (_lock)
        {
            _decoding--;
            if (_turn)
            {
                if (_decoding == 0) _turnWaiter?.TrySetResult();
            }
            else Grant();
        }
    }

    void EndTurn()
    {
        lock (_lock)
        {
            _turn = false;
            _turnWaiter = null;
            Grant();
        }
    }

    void Leave()
    {
        lock (_lock)
        {
            _pending--;
            _pendingChanged.TrySetResult();
            _pendingChanged = NewSignal();
        }
    }

    /// <summary>Hands free slots to waiters in arrival order, skipping cancelled ones. Called under the lock.</summary>
    void Grant()
    {
        while (_decoding < MaxDecodes && _decodeWaiters.TryDequeue(out var waiter))
            if (waiter.TrySetResult()) _decoding++;
    }

    static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public readonly struct DecodeSlot(CoreScheduler owner) : IDisposable
    {
        public void Dispose() => owner.EndDecode();
    }

    public readonly struct ModelTurn(CoreScheduler? owner) : IDisposable
    {
        public void Dispose() => owner?.EndTurn();
    }

    public sealed class PendingImage(CoreScheduler owner) : IDisposable
    {
        int _left;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _left, 1) == 0) owner.Leave();
        }
    }
}
