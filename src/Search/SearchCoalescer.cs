namespace AlexNet.Search;

/// <summary>
/// Searches that arrive together answered by one pass over the rows (<see cref="FeatureIndex.Search(IReadOnlyList{SearchQuery})"/>):
/// the search counterpart of the service's inference batcher. A scan is memory-bound, so 16 concurrent searches
/// answered one by one read the index 16 times; answered together they read it once.
/// <para>No thread of its own: a caller that finds no pass running runs one itself, with every search queued for the
/// same index (up to <see cref="MaxGroup"/>, oldest first); searches that arrive meanwhile wait, and when the pass ends
/// the oldest of them runs the next pass for the others. With <see cref="Delay"/> 0 (the default) a lone search
/// starts at once and a search never waits for company beyond the pass already running; a positive delay lets a pass
/// wait that long for <see cref="MaxGroup"/> searches before it starts.</para>
/// <para>A small index (<see cref="AloneBelowBytes"/>) is searched by each caller at once, as without a coalescer.</para>
/// <para>Answers are exactly those of <see cref="FeatureIndex.Search(ReadOnlySpan{float}, int, long?)"/>. A cancelled
/// caller gets <see cref="OperationCanceledException"/>: one still queued leaves the queue, one whose query is in a pass
/// leaves it to finish for the others; cancellation never stops a pass. Searches for different indexes (a model
/// reload replaces the index) never share a pass. Thread-safe.</para>
/// </summary>
public sealed class SearchCoalescer
{
    readonly object _gate = new();   // guards the queue, _running and every Pending's State
    readonly List<Pending> _queue = [];
    bool _running;
    long _passes, _searches;
    int _largest;

    /// <param name="maxGroup">Most searches answered by one pass; 1 answers each alone.</param>
    /// <param name="delay">How long a pass waits for <paramref name="maxGroup"/> searches before it starts; zero: it
    /// takes whatever queued while the previous pass ran.</param>
    public SearchCoalescer(int maxGroup = 16, TimeSpan delay = default)
    {
        MaxGroup = maxGroup >= 1 ? maxGroup : throw new ArgumentOutOfRangeException(nameof(maxGroup));
        Delay = delay >= TimeSpan.Zero ? delay : throw new ArgumentOutOfRangeException(nameof(delay));
    }

    public int MaxGroup { get; }
    public TimeSpan Delay { get; }

    /// <summary>Passes run so far.</summary>
    public long Passes => Interlocked.Read(ref _passes);
    /// <summary>Searches answered by those passes.</summary>
    public long Searches => Interlocked.Read(ref _searches);
    /// <summary>The most searches one pass has answered.</summary>
    public int LargestGroup => Volatile.Read(ref _largest);

    /// <summary>Searches waiting for a pass (not counting those in one).</summary>
    public int Queued
    {
        get { lock (_gate) return _queue.Count(p => p.State != State.Leading); }
    }

    /// <summary>
    /// An index whose scan reads fewer bytes than this (<see cref="IVectorIndex.ScanBytes"/>; 24 MiB, under the 32 MiB L3
    /// cache that two cores of a Zen 3 or Zen 4 share with their CCD) is searched at once by its caller, not in a pass:
    /// its rows come from cache, so a shared pass saves little memory traffic, while one pass at a time keeps callers
    /// waiting and, when a search is too small to split among threads, leaves cores idle. Measured with 16 callers
    /// (docs/benchmarks.md): 3,000 x 256 fp32 together 0.7-0.9x the queries/s of one caller against 1.5-1.8x each alone;
    /// 1,000 x 4096 fp32 (16 MiB) together 0.7x each alone, 2,000 (31 MiB) 1.2x, 8,000 (125 MiB) 2.1x. 0 sends every
    /// search through passes.
    /// </summary>
    public long AloneBelowBytes { get; init; } = 24L << 20;

    /// <summary>The clock that <see cref="Delay"/> is measured on (a test seam).</summary>
    internal TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>Called with the group's size by the thread that runs a pass, just before the pass (a test seam).</summary>
    internal Action<int>? PassStarting { get; set; }

    /// <summary>The k nearest rows of <paramref name="index"/> to <paramref name="query"/>, leaving out
    /// <paramref name="exclude"/>: <see cref="FeatureIndex.Search(ReadOnlySpan{float}, int, long?)"/>'s answer, answered
    /// together with the searches that arrive with it.</summary>
    public Neighbour[] Search(IVectorIndex index, ReadOnlySpan<float> query, int k, long? exclude = null, CancellationToken cancellationToken = default)
    {
        if (query.Length != index.Dim) throw new ArgumentException($"The index holds {index.Dim}-d vectors, the query is {query.Length}-d.", nameof(query));
        cancellationToken.ThrowIfCancellationRequested();
        if (index.ScanBytes < AloneBelowBytes) return index.Search(query, k, exclude);
        var me = new Pending(index, new SearchQuery(query.ToArray(), k, exclude));   // a copy: the caller's array may change once it has left
        lock (_gate)
        {
            _queue.Add(me);
            if (!_running) (_running, me.State) = (true, State.Leading);
            else if (_queue.Count >= MaxGroup) Monitor.PulseAll(_gate);   // a pass waiting out Delay may start now
        }
        if (me.State != State.Leading) Wait(me, cancellationToken);
        if (me.State == State.Leading) Lead(me);
        cancellationToken.ThrowIfCancellationRequested();
        return me.Error is { } error ? throw new AggregateException("The search pass failed.", error) : me.Result!;
    }

    /// <summary>Waits until <paramref name="me"/> is answered or has to lead the next pass.</summary>
    void Wait(Pending me, CancellationToken cancellationToken)
    {
        try { me.Signal.Wait(cancellationToken); }
        catch (OperationCanceledException)
        {
            lock (_gate)
            {
                if (me.State is State.Queued or State.Leading)
                {
                    _queue.Remove(me);
                    if (me.State == State.Leading) HandOff();   // the next oldest leads in its place
                    me.State = State.Done;
                }
                // Taken: its pass goes on for the others and drops its answer.
            }
            throw;
        }
    }

    /// <summary>Runs one pass with <paramref name="me"/> (first in the queue) and the searches queued behind it for the
    /// same index, then hands the queue to the oldest search left.</summary>
    void Lead(Pending me)
    {
        List<Pending> group = [];
        lock (_gate)
        {
            if (Delay > TimeSpan.Zero)
            {
                // One read of the clock a round: the time left that was checked is the time waited (a second read could
                // give a negative timeout, which Monitor.Wait takes as "for ever" at -1 ms and refuses below).
                var until = Clock.GetUtcNow() + Delay;
                for (var left = Delay; Same(me.Index) < MaxGroup && left > TimeSpan.Zero; left = until - Clock.GetUtcNow())
                    Monitor.Wait(_gate, left);
            }
            for (var i = 0; i < _queue.Count && group.Count < MaxGroup; i++)
                if (ReferenceEquals(_queue[i].Index, me.Index))
                {
                    _queue[i].State = State.Taken;
                    group.Add(_queue[i]);
                }
            _queue.RemoveAll(p => p.State == State.Taken);
        }
        try
        {
            PassStarting?.Invoke(group.Count);
            var answers = me.Index.Search([.. group.Select(p => p.Query)]);
            for (var i = 0; i < group.Count; i++) group[i].Result = answers[i];
        }
        catch (Exception e)
        {
            foreach (var p in group) p.Error = e;
        }
        Interlocked.Increment(ref _passes);
        Interlocked.Add(ref _searches, group.Count);
        lock (_gate)
        {
            _largest = Math.Max(_largest, group.Count);
            foreach (var p in group)
            {
                p.State = State.Done;
                p.Signal.Set();
            }
            HandOff();
        }
    }

    /// <summary>Under the lock: the oldest queued search leads the next pass, or none runs.</summary>
    void HandOff()
    {
        if (_queue.Count == 0)
        {
            _running = false;
            return;
        }
        _queue[0].State = State.Leading;
        _queue[0].Signal.Set();
    }

    int Same(IVectorIndex index) => _queue.Count(p => ReferenceEquals(p.Index, index));

    enum State { Queued, Leading, Taken, Done }

    /// <summary>One caller's search. <see cref="State"/> changes under the coalescer's lock; the caller reads its answer
    /// after <see cref="Signal"/> (never disposed: a pass may set it after its caller has gone).</summary>
    sealed class Pending(IVectorIndex index, SearchQuery query)
    {
        public IVectorIndex Index { get; } = index;
        public SearchQuery Query { get; } = query;
        public volatile State State;
        public readonly ManualResetEventSlim Signal = new();
        public Neighbour[]? Result;
        public Exception? Error;
    }
}
