using System.Diagnostics;

namespace AlexNet.Model.Imaging;

/// <summary>
/// Fires decode deadlines from one dedicated thread. <see cref="CancellationTokenSource.CancelAfter(TimeSpan)"/> fires
/// through a thread-pool work item, so while the pool's threads are busy (decodes are CPU-bound and never yield, and
/// under load every pool thread may be in one) the deadline waits for the pool to add a thread: 300 ms deadlines fired
/// after 650-850 ms in a test process with two busy pool threads, and after 2.7 s in CI. A thread of its own wakes on
/// time whatever the pool is doing, which is when the deadline matters.
/// </summary>
internal static class DecodeDeadlines
{
    static readonly object Gate = new();
    static readonly PriorityQueue<Deadline, long> Queue = new();
    static Thread? _thread;

    /// <summary>A token cancelled <paramref name="after"/> from now (never for <see cref="Timeout.InfiniteTimeSpan"/>);
    /// dispose the result when the work ends, so the deadline cannot fire into it afterwards.</summary>
    public static Deadline Start(TimeSpan after)
    {
        var deadline = new Deadline();
        if (after == Timeout.InfiniteTimeSpan) return deadline;
        ArgumentOutOfRangeException.ThrowIfLessThan(after, TimeSpan.Zero);
        var due = Stopwatch.GetTimestamp() + (long)(after.TotalSeconds * Stopwatch.Frequency);
        lock (Gate)
        {
            var wake = !Queue.TryPeek(out _, out var first) || due < first;
            Queue.Enqueue(deadline, due);
            if (_thread is null)
            {
                _thread = new Thread(Run) { IsBackground = true, Name = "decode deadlines" };
                _thread.Start();
            }
            else if (wake) Monitor.Pulse(Gate);
        }
        return deadline;
    }

    static void Run()
    {
        lock (Gate)
        {
            while (true)
            {
                if (!Queue.TryPeek(out _, out var first))
                {
                    Monitor.Wait(Gate);
                    continue;
                }
                var left = first - Stopwatch.GetTimestamp();
                if (left > 0)
                {
                    // Whole milliseconds, rounded up: waking early would only loop; late by under 1 ms is on time.
                    Monitor.Wait(Gate, (int)Math.Min(int.MaxValue, (left * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency));
                    continue;
                }
                var due = Queue.Dequeue();
                // Under the lock, so it never races Dispose. The token's callbacks run here: the decoder registers none,
                // and a linked source's callback only cancels the linked source.
                if (due.Ended) continue;
                try
                {
                    due.Source.Cancel();
                }
                catch (AggregateException)
                {
                    // A callback someone registered threw; the token is cancelled all the same, and this thread must live.
                }
            }
        }
    }

    /// <summary>One decode's deadline.</summary>
    public sealed class Deadline : IDisposable
    {
        internal readonly CancellationTokenSource Source = new();
        internal bool Ended;

        public CancellationToken Token => Source.Token;

        public void Dispose()
        {
            lock (Gate)
            {
                if (Ended) return;
                Ended = true;
            }
            // Nothing fires into it now. A finished deadline stays in the queue until it is due (a few small objects
            // per decode in flight over the last DecodeTimeout) rather than paying an O(n) removal per decode.
            Source.Dispose();
        }
    }
}
