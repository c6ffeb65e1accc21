using System.Diagnostics;
using AlexNet.Tests.Shared;
using AlexNet.Model.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Model.Tests;

/// <summary>The decode deadline (issue #20): it really stops ImageSharp's JPEG decoder, and a caller's own cancellation
/// stays an <see cref="OperationCanceledException"/>, not a rejected image.</summary>
public class DecodeDeadlineTests
{
    // The structural limits off, so only the deadline stands between the scan bomb and 40 s of decoding.
    internal static readonly DecoderLimits NoStructureLimits = new()
    {
        MaxJpegScans = int.MaxValue, MaxJpegScanSamples = long.MaxValue, DecodeTimeout = TimeSpan.FromMilliseconds(300),
    };

    [Fact]
    public void TheDeadlineStopsAJpegDecodeInsideImageSharp()
    {
        var decoder = new SafeImageDecoder(NoStructureLimits);
        var (error, elapsed) = JpegStructureTests.TimedDecode(decoder, HostileFiles.ScanBomb(1000, 8192, 4882), TimeSpan.FromSeconds(10));
        var e = Assert.IsType<ImageRejectedException>(error);
        Assert.Equal(ImageRejection.TooLarge, e.Reason);
        Assert.Contains("longer than the 0.3 s allowed", e.Message);
        // Without the deadline this file decodes for ~40 s; the margin over 0.3 s is for a loaded CI host.
        Assert.True(elapsed < TimeSpan.FromSeconds(4), $"stopped after {elapsed.TotalMilliseconds:F0} ms ");
    }

    [Fact]
    public void TheCallersCancellationIsNotARejection()
    {
        var decoder = new SafeImageDecoder(NoStructureLimits with { DecodeTimeout = TimeSpan.FromSeconds(30) });
        using var cts = new CancellationTokenSource();
        // Cancelled from a thread of its own: a CancelAfter timer waits for a free pool thread (seconds in a busy test host).
        var canceller = new Thread(() =>
        {
            Thread.Sleep(200);
            cts.Cancel();
        }) { IsBackground = true };
        canceller.Start();
        var (error, elapsed) = JpegStructureTests.TimedDecode(decoder, HostileFiles.ScanBomb(1000, 8192, 4882),
            TimeSpan.FromSeconds(10), cts.Token);
        canceller.Join();
        Assert.IsAssignableFrom<OperationCanceledException>(error);
        Assert.True(elapsed < TimeSpan.FromSeconds(4), $"stopped after {elapsed.TotalMilliseconds:F0} ms ");

        using var png = new MemoryStream();
        new Image<Rgb24>(4, 4).SaveAsPng(png);
        Assert.ThrowsAny<OperationCanceledException>(() => SafeImageDecoder.Default.Decode(png.ToArray(), new CancellationToken(true)));
    }

    [Fact]
    public void AnInfiniteDeadlineIsAllowed()
    {
        var decoder = new SafeImageDecoder(new DecoderLimits { DecodeTimeout = Timeout.InfiniteTimeSpan });
        using var image = decoder.Decode(HostileFiles.ScanBomb(10, 64, 64));
        Assert.Equal(64, image.Width);
    }
}

/// <summary>The deadline must not wait for the thread pool: under load every pool thread may be inside a decode, and
/// CancellationTokenSource.CancelAfter fires through a pool work item (CI saw a 0.3 s deadline fire after 2.7 s).
/// Caps the pool, so it runs alone.</summary>
[Collection(ThreadPoolCapped.Name)]
public class DecodeDeadlineUnderABusyPoolTests
{
    [Fact]
    public void TheDeadlineFiresWhileEveryPoolThreadIsBusy()
    {
        ThreadPool.GetMinThreads(out var minWorkers, out _);
        ThreadPool.GetMaxThreads(out var maxWorkers, out var maxIo);
        Assert.True(ThreadPool.SetMaxThreads(minWorkers, maxIo), "could not cap the pool");
        var release = new ManualResetEventSlim();
        var pool = Stopwatch.StartNew();
        var probeRanAt = long.MaxValue;   // ms
        try
        {
            // Spinners (not blocked threads, for which the pool would add threads) take every pool thread the test
            // host is not already using, until released or 20 s; a probe queued behind them shows when one was free.
            for (var i = 0; i < minWorkers + 2; i++)
                ThreadPool.UnsafeQueueUserWorkItem(_ =>
                {
                    var clock = Stopwatch.StartNew();
                    while (!release.IsSet && clock.Elapsed < TimeSpan.FromSeconds(20)) Thread.SpinWait(1000);
                }, null);
            ThreadPool.UnsafeQueueUserWorkItem(_ => Interlocked.Exchange(ref probeRanAt, pool.ElapsedMilliseconds), null);

            var decoder = new SafeImageDecoder(DecodeDeadlineTests.NoStructureLimits);
            var bomb = HostileFiles.ScanBomb(1000, 8192, 4882);
            Exception? error = null;
            var elapsed = TimeSpan.Zero;
            var worker = new Thread(() =>
            {
                var clock = Stopwatch.StartNew();
                try
                {
                    decoder.Decode(bomb).Dispose();
                }
                catch (Exception e)
                {
                    error = e;
                }
                elapsed = clock.Elapsed;
            }) { IsBackground = true };
            worker.Start();
            Assert.True(worker.Join(TimeSpan.FromSeconds(15)), "the decode was still running after 15 s: the deadline never fired ");
            var ended = pool.ElapsedMilliseconds;
            var probe = Interlocked.Read(ref probeRanAt);
            Assert.True(probe > ended, $"a pool thread was free at {probe} ms, before the decode ended at {ended} ms: the pool was not busy");
            var e = Assert.IsType<ImageRejectedException>(error);
            Assert.Contains("longer than the 0.3 s allowed", e.Message);
            Assert.True(elapsed < TimeSpan.FromSeconds(4), $"stopped after {elapsed.TotalMilliseconds:F0} ms ");
        }
        finally
        {
            release.Set();
            ThreadPool.SetMaxThreads(maxWorkers, maxIo);
        }
    }

    [Fact]
    public void AnEndedDeadlineNeverFiresAndLaterOnesStillDo()
    {
        var ended = DecodeDeadlines.Start(TimeSpan.FromMilliseconds(50));
        var token = ended.Token;
        ended.Dispose();
        using var later = DecodeDeadlines.Start(TimeSpan.FromMilliseconds(100));
        using var sooner = DecodeDeadlines.Start(TimeSpan.FromMilliseconds(20));
        Assert.True(sooner.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(5)), "a sooner deadline queued after a later one did not fire");
        Assert.True(later.Token.WaitHandle.WaitOne(TimeSpan.FromSeconds(5)));
        Assert.False(token.IsCancellationRequested);
        using var never = DecodeDeadlines.Start(Timeout.InfiniteTimeSpan);
        Assert.False(never.Token.WaitHandle.WaitOne(200));
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public class ThreadPoolCapped
{
    public const string Name = "thread pool capped";
}

