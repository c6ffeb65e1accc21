using System.Globalization;
using Xunit.Abstractions;

namespace AlexNet.Api.Tests;

/// <summary>
/// Overload with a fixed, small request count (the long run is tools/LoadTest, docs/benchmarks.md "Overload and
/// soak"): the real service in a child process, so the memory measured is its own, with a small queue. Bursts far
/// above capacity get only 200 or 503 with Retry-After (no other 5xx, no transport failures), the working set is flat
/// once the GC has settled, and normal requests succeed right after.
/// </summary>
public sealed class OverloadTests(ITestOutputHelper output) : IDisposable
{
    const int Bursts = 10;
    const int BurstSize = 300;
    /// <summary>Bursts after which memory has settled: the GC grows its heaps over the first few (measured: 181, 182,
    /// 182, 185, 193, then 194-196 MiB for nine more bursts).</summary>
    const int Settled = 5;
    /// <summary>Working-set growth allowed from the settled burst to the last.</summary>
    const double FlatWithin = 0.10;

    readonly TempDir _dir = new();

    [Fact]
    public async Task BurstsAboveCapacityGetOnly200Or503WithRetryAfterAndMemoryStaysFlat()
    {
        var model = _dir.File("model.onnx");
        TestModel.Write(model, seed: 6);
        using var service = await ServiceProcess.StartAsync(model, _dir.File("gallery.db"), new Dictionary<string, string>
        {
            ["Cache__Enabled"] = "false",
            ["Inference__QueueCapacity"] = "16",
            ["Uploads__MaxUploadsPerClient"] = "100000",      // one client: its per-client bounds would answer 429s
            ["Server__MaxConnectionsPerClient"] = "100000",
        });
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024 }) { BaseAddress = service.Address, Timeout = TimeSpan.FromSeconds(60) };
        byte[][] images = [.. Enumerable.Range(0, 64).Select(i => TestImages.Png(i, 64, 64))];

        for (var i = 0; i < 40; i++)   // warm-up
            using (var r = await client.PostAsync("/api/classify", Http.Raw(images[i % images.Length]))) Assert.Equal(HttpStatusCode.OK, r.StatusCode);

        var workingSets = new List<long>();
        var (ok, overloaded) = (0, 0);
        for (var burst = 0; burst < Bursts; burst++)
        {
            var replies = await Task.WhenAll(Enumerable.Range(0, BurstSize).Select(async i =>
            {
                try
                {
                    return await Reply.FromAsync(await client.PostAsync("/api/classify", Http.Raw(images[i % images.Length])));
                }
                catch (HttpRequestException e)
                {
                    return new Reply(0, null, e.Message, new Dictionary<string, string>());
                }
            }));
            foreach (var r in replies)
            {
                Assert.True(r.Status is 200 or 503, $"burst {burst}: {r.Status} {r.Body}");
                if (r.Status == 503)
                {
                    Assert.Equal("application/problem+json", r.MediaType);
                    Assert.True(int.TryParse(r.Headers.GetValueOrDefault("Retry-After"), out var s) && s >= 1, $"503 without Retry-After: {r.Body}");
                }
            }
            ok += replies.Count(r => r.Status == 200);
            overloaded += replies.Count(r => r.Status == 503);
            workingSets.Add(await WorkingSetAsync(client));
        }

        output.WriteLine($"{Bursts} bursts of {BurstSize}: {ok} answered, {overloaded} refused with 503; service working set after each burst (MiB): " +
            string.Join(", ", workingSets.Select(w => w >> 20)));
        Assert.True(overloaded > 0, "the bursts never overloaded the service: the test proves nothing");
        Assert.True(ok > 0);
        var growth = (double)(workingSets[^1] - workingSets[Settled - 1]) / workingSets[Settled - 1];
        Assert.True(growth < FlatWithin, $"working set grew {growth:P0} from burst {Settled} to burst {Bursts}: {string.Join(", ", workingSets.Select(w => w >> 20))} MiB");

        for (var i = 0; i < 10; i++)
            using (var r = await client.PostAsync("/api/classify", Http.Raw(images[i]))) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    /// <summary>Requests waiting to decode are not in the inference queue, so without a bound on requests in flight
    /// they pile up (with their bodies) behind a busy model. Beyond Inference:MaxRequestsInFlight: 503 at once.</summary>
    [Fact]
    public async Task RequestsBeyondMaxInFlightGet503AtOnceWhileTheModelIsBusy()
    {
        var model = _dir.File("model.onnx");
        TestModel.Write(model, seed: 7);
        var gate = new HoldingGate();
        await using var factory = new ApiFactory(model, _dir.File("gallery.db"), new Dictionary<string, string?>
        {
            ["Inference:QueueCapacity"] = "100",
            ["Inference:MaxBatchSize"] = "1",
            ["Inference:MaxRequestsInFlight"] = "3",
            ["Cache:Enabled"] = "false",
        }, services => services.AddSingleton<Inference.IInferenceGate>(gate));
        var client = await factory.ReadyClientAsync();

        gate.Hold();
        var admitted = Enumerable.Range(0, 3).Select(i => client.PostAsync("/api/classify", Http.Raw(TestImages.Png(i)))).ToArray();
        await gate.Entered.WaitAsync(TimeSpan.FromSeconds(10));
        await WaitUntilAsync(async () => await Http.MetricAsync(client, "alexnet_requests_in_flight") == 3);
        var refused = await Task.WhenAll(Enumerable.Range(0, 5).Select(async i =>
            await Reply.FromAsync(await client.PostAsync("/api/classify", Http.Raw(TestImages.Png(10 + i))))));
        gate.Release();

        Assert.All(refused, r =>
        {
            Assert.Equal(503, r.Status);
            Assert.Equal("application/problem+json", r.MediaType);
            Assert.Contains("at capacity (3 requests in progress)", r.Body);
            Assert.Equal("1", r.Headers["Retry-After"]);
        });
        foreach (var a in admitted)
            using (var r = await a) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(0, await Http.MetricAsync(client, "alexnet_requests_in_flight"));
        Assert.Equal(5, await Http.MetricAsync(client, "alexnet_requests_rejected_total{reason=\"at_capacity\"}"));
    }

    static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("Condition not met in 10 s.");
            await Task.Delay(10);
        }
    }

    static async Task<long> WorkingSetAsync(HttpClient client)
    {
        var line = (await client.GetStringAsync("/metrics")).Split('\n').Single(l => l.StartsWith("process_working_set_bytes ", StringComparison.Ordinal));
        return (long)double.Parse(line["process_working_set_bytes ".Length..], CultureInfo.InvariantCulture);
    }

    public void Dispose() => _dir.Dispose();
}
