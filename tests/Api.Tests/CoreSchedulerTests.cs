namespace AlexNet.Api.Tests;

/// <summary>
/// <see cref="CoreScheduler"/>: decode slots are bounded, a model turn waits for decodes in progress and holds new
/// ones back until it ends, cancelled waiters never keep a slot, and pending images are counted until let go.
/// Plus the batcher's queue and compute metrics on the real service.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class CoreSchedulerTests(ModelFixture models) : IDisposable
{
    readonly TempDir _dir = new();
    static readonly TimeSpan Soon = TimeSpan.FromMilliseconds(100);

    [Fact]
    public async Task TurnWaitsForDecodesInProgressAndHoldsNewOnesBack()
    {
        var scheduler = new CoreScheduler(maxDecodes: 2);
        var a = await scheduler.DecodeAsync(CancellationToken.None);
        var b = await scheduler.DecodeAsync(CancellationToken.None);
        var third = scheduler.DecodeAsync(CancellationToken.None).AsTask();
        await Task.Delay(Soon);
        Assert.False(third.IsCompleted);   // two slots

        var turn = scheduler.TurnAsync(CancellationToken.None).AsTask();
        a.Dispose();
        await Task.Delay(Soon);
        Assert.False(turn.IsCompleted);    // b still decodes
        Assert.False(third.IsCompleted);   // the freed slot is held for the model's turn
        b.Dispose();
        using (await turn.WaitAsync(TimeSpan.FromSeconds(5)))
        {
            await Task.Delay(Soon);
            Assert.False(third.IsCompleted);   // no decode while the model runs
        }
        (await third.WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
    }

    [Fact]
    public async Task CancelledWaiterKeepsNoSlot()
    {
        var scheduler = new CoreScheduler(maxDecodes: 1);
        var held = await scheduler.DecodeAsync(CancellationToken.None);
        using var cts = new CancellationTokenSource();
        var waiting = scheduler.DecodeAsync(cts.Token).AsTask();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        held.Dispose();
        (await scheduler.DecodeAsync(CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5))).Dispose();
        (await scheduler.TurnAsync(CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5))).Dispose();   // nothing decodes
    }

    [Fact]
    public async Task PendingImagesAreCountedUntilLetGo()
    {
        var scheduler = new CoreScheduler(maxDecodes: 0);
        Assert.Equal(Environment.ProcessorCount, scheduler.MaxDecodes);
        var first = scheduler.Arrive();
        var second = scheduler.Arrive();
        Assert.Equal(2, scheduler.Pending);
        var fell = scheduler.PendingFell;
        first.Dispose();
        first.Dispose();   // once only
        await fell.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(1, scheduler.Pending);
        second.Dispose();
        Assert.Equal(0, scheduler.Pending);
    }

    [Fact]
    public async Task BatcherReportsQueueTimeComputeTimeAndBatchSize()
    {
        await using var factory = new ApiFactory(models.ModelA, _dir.File("gallery.db"), new Dictionary<string, string?> { ["Cache:Enabled"] = "false" });
        var client = await factory.ReadyClientAsync();
        var (queued, computed, sized) = (await Metric(client, "alexnet_inference_queue_seconds_count"),
            await Metric(client, "alexnet_inference_batch_seconds_count"), await Metric(client, "alexnet_inference_batch_size_sum"));

        using var response = await client.PostAsync("/api/classify?tenCrop=true", Http.Form(TestImages.Png(31)));
        response.EnsureSuccessStatusCode();

        Assert.True(await Metric(client, "alexnet_inference_queue_seconds_count") >= queued + 10, "one queue time per crop");
        Assert.True(await Metric(client, "alexnet_inference_batch_seconds_count") >= computed + 1, "one compute time per batch");
        Assert.True(await Metric(client, "alexnet_inference_batch_size_sum") >= sized + 10, "ten crops in batches");
    }

    static Task<double> Metric(HttpClient client, string sample) => Http.MetricAsync(client, sample);

    public void Dispose() => _dir.Dispose();
}
