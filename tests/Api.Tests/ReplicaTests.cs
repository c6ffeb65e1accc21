using System.Collections.Concurrent;
using AlexNet.Api.Endpoints;
using Xunit.Abstractions;

namespace AlexNet.Api.Tests;

/// <summary>
/// Several replicas sharing one gallery in PostgreSQL (issue 17), all real: a PostgreSQL 15 server in a temporary
/// folder on a loopback port, three service processes (Gallery:Store=Postgres) and HAProxy in front of them,
/// health-checking /health/ready.
/// </summary>
[Collection(ReplicaFleet.Collection)]
public sealed class ReplicaTests(ITestOutputHelper output) : IDisposable
{
    readonly TempDir _dir = new();

    [Fact]
    public async Task AnImageAddedThroughTheBalancerIsFoundThroughEachReplica()
    {
        await using var fleet = await ReplicaFleet.StartAsync(_dir, replicas: 3);
        using var add = await fleet.Balancer.Client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery?label=first")
            { Content = Http.Raw(TestImages.Png(1)) }.WithKey());
        Assert.Equal(HttpStatusCode.Created, add.StatusCode);
        var id = (await add.JsonAsync<GalleryAddResponse>()).Items.Single().Id;
        var sequence = long.Parse(add.Headers.GetValues(GalleryEndpoints.SequenceHeader).Single());
        Assert.True(sequence > 0);

        var clock = Stopwatch.StartNew();
        foreach (var replica in fleet.Replicas)
        {
            // Without asking for a sequence: the replica converges by itself (notification, else the poll).
            while (true)
            {
                var hits = await SearchAsync(replica!.Client, TestImages.Png(1));
                if (hits.Length > 0)
                {
                    Assert.Equal((id, 0f), (hits[0].Id, hits[0].Distance));
                    break;
                }
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"{replica.Address} never showed image {id}");
                await Task.Delay(20);
            }
            using var item = await replica.Client.GetAsync($"/api/gallery/{id}");
            Assert.Equal(HttpStatusCode.OK, item.StatusCode);
        }
        output.WriteLine($"found through all three replicas {clock.ElapsedMilliseconds} ms after the add's answer");

        // Read your own write anywhere: a search that names the add's sequence sees it on every replica.
        using var second = await fleet.Balancer.Client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery?label=second")
            { Content = Http.Raw(TestImages.Png(2)) }.WithKey());
        var secondId = (await second.JsonAsync<GalleryAddResponse>()).Items.Single().Id;
        var secondSeq = long.Parse(second.Headers.GetValues(GalleryEndpoints.SequenceHeader).Single());
        foreach (var replica in fleet.Replicas)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/gallery/search?k=2") { Content = Http.Raw(TestImages.Png(2)) };
            request.Headers.Add(GalleryEndpoints.MinSequenceHeader, secondSeq.ToString());
            using var answer = await replica!.Client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            Assert.True(long.Parse(answer.Headers.GetValues(GalleryEndpoints.SequenceHeader).Single()) >= secondSeq);
            var hits = (await answer.JsonAsync<SearchResponse>()).Results[0].Neighbours;
            Assert.True(hits.Length == 2 && hits[0].Id == secondId && hits[0].Distance == 0,
                $"{replica.Address}: {string.Join(", ", hits.Select(h => $"{h.Id} at {h.Distance}"))}, not {secondId} at 0");
        }
        await fleet.VerifyConvergedAsync();
    }

    /// <summary>Adds and deletes stream in through the balancer while replicas are SIGKILLed and restarted at random
    /// moments; afterwards every acknowledged add is in every replica, no acknowledged delete came back, nothing is
    /// duplicated, and each replica's listing and index equal the table row for row.</summary>
    [Fact]
    public async Task AcknowledgedWritesSurviveReplicaKillsAndEveryReplicaConverges()
    {
        const int Kills = 10;
        await using var fleet = await ReplicaFleet.StartAsync(_dir, replicas: 3);
        var ledger = new Ledger();
        var rng = new Random(20261207);
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 3).Select(w => Task.Run(() => WriteAsync(fleet.Balancer.Client, w, ledger, stop.Token))).ToArray();
        var clock = Stopwatch.StartNew();
        for (var kill = 0; kill < Kills; kill++)
        {
            await Task.Delay(rng.Next(200, 1500));
            var victim = rng.Next(fleet.Replicas.Length);
            fleet.Replicas[victim]!.Kill();
            await fleet.RestartAsync(victim);   // on a new port; the balancer's health check takes it back when ready
        }
        await Task.Delay(500);
        await stop.CancelAsync();
        await Task.WhenAll(writers);
        output.WriteLine($"{Kills} kills in {clock.Elapsed.TotalSeconds:F1} s: {ledger.Attempted.Count} adds sent, {ledger.Added.Count} acknowledged, " +
            $"{ledger.Deleted.Count} deletes acknowledged; unanswered (a replica died under them): {ledger.Unanswered}");
        Assert.True(ledger.Failures.IsEmpty, string.Join("\n", ledger.Failures.Take(10)));
        Assert.True(ledger.Added.Count >= 30, $"only {ledger.Added.Count} acknowledged adds");

        await fleet.VerifyConvergedAsync();
        var rows = fleet.LiveRows();
        var byId = rows.ToDictionary(r => r.Id);
        foreach (var (label, id) in ledger.Added)
            if (!ledger.DeleteSent.ContainsKey(id))
                Assert.True(byId.TryGetValue(id, out var row) && row.Label == label, $"acknowledged add {id} ({label}) is missing");
        foreach (var id in ledger.Deleted.Keys) Assert.False(byId.ContainsKey(id), $"acknowledged delete {id} came back");
        Assert.All(rows, r => Assert.True(r.Label is not null && ledger.Attempted.ContainsKey(r.Label), $"row {r.Id} ({r.Label}) was never sent"));
        Assert.Equal(rows.Count, rows.Select(r => r.Label).Distinct().Count());   // no add stored twice
    }

    /// <summary>PostgreSQL stopped for a few seconds under load: writes get only 503 with Retry-After (or succeed),
    /// classification and search never fail, and everything converges when it is back.</summary>
    [Fact]
    public async Task WithPostgresDownWritesAre503AndReadsGoOnThenEverythingConverges()
    {
        await using var fleet = await ReplicaFleet.StartAsync(_dir, replicas: 3);
        var statuses = new ConcurrentDictionary<string, int>();
        var bad = new ConcurrentQueue<string>();
        var phase = 0;   // 0 before, 1 down, 2 after
        using var stop = new CancellationTokenSource();
        var client = fleet.Balancer.Client;

        async Task LoopAsync(string kind, int seed) => await LoadAsync(client, kind, seed, $"{kind}{seed}n", TimeSpan.FromMilliseconds(50),
            async answer =>
            {
                var code = (int)answer.StatusCode;
                statuses.AddOrUpdate($"{kind} {Volatile.Read(ref phase)} {code}", 1, (_, c) => c + 1);
                var ok = kind == "add"
                    ? code == 201 || (code == 503 && answer.Headers.RetryAfter is not null)
                    : code == 200;
                if (!ok) bad.Enqueue($"{kind} in phase {Volatile.Read(ref phase)}: {code} {await answer.Content.ReadAsStringAsync()}");
            }, stop.Token);

        var loops = new[] { LoopAsync("classify", 1), LoopAsync("search", 2), LoopAsync("add", 3), LoopAsync("add", 4) };
        await Task.Delay(1500);
        Volatile.Write(ref phase, 1);
        fleet.Database.Stop();
        await Task.Delay(4000);
        fleet.Database.Start();
        Volatile.Write(ref phase, 2);
        await Task.Delay(4000);
        await stop.CancelAsync();
        await Task.WhenAll(loops);
        output.WriteLine(string.Join(", ", statuses.OrderBy(s => s.Key).Select(s => $"{s.Key}: {s.Value}")));

        Assert.True(bad.IsEmpty, string.Join("\n", bad.Take(10)));
        Assert.True(statuses.GetValueOrDefault("add 1 503") > 0, "no write was refused while PostgreSQL was down: the outage was not tested");
        Assert.True(statuses.GetValueOrDefault("add 2 201") > 0, "no write succeeded after PostgreSQL came back");
        Assert.True(statuses.GetValueOrDefault("classify 1 200") > 0 && statuses.GetValueOrDefault("search 1 200") > 0,
            "no classify or search was answered while PostgreSQL was down");
        await fleet.VerifyConvergedAsync();
        foreach (var replica in fleet.Replicas)
        {
            var clock = Stopwatch.StartNew();
            while ((await replica!.ReadinessAsync()).Status != "ready")
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"{replica.Address} still degraded");
                await Task.Delay(100);
            }
        }
    }

    /// <summary>A rolling model change: each replica in turn reloads a new model while classify and search run
    /// through the balancer and adds keep coming. No request fails; each replica ends with the new model's vectors of
    /// every image, embedded once across the fleet.</summary>
    [Fact]
    public async Task ARollingModelChangeFailsNoRequestAndEndsWithTheNewModelsVectors()
    {
        await using var fleet = await ReplicaFleet.StartAsync(_dir, replicas: 3);
        for (var i = 0; i < 12; i++)
        {
            using var add = await fleet.Balancer.Client.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"/api/gallery?label=seed{i}")
                { Content = Http.Raw(TestImages.Png(500 + i, 32, 32)) }.WithKey());
            Assert.Equal(HttpStatusCode.Created, add.StatusCode);
        }
        var next = _dir.File("next.onnx");
        TestModel.Write(next, seed: 77);
        var nextFingerprint = OnnxClassifier.Fingerprint(next);

        var bad = new ConcurrentQueue<string>();
        var counts = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        async Task LoopAsync(string kind, int seed) => await LoadAsync(fleet.Balancer.Client, kind, seed, "roll", TimeSpan.FromMilliseconds(100),
            async answer =>
            {
                counts.AddOrUpdate(kind, 1, (_, c) => c + 1);
                if ((int)answer.StatusCode is not (200 or 201)) bad.Enqueue($"{kind}: {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");
            }, stop.Token);
        var loops = new[] { LoopAsync("classify", 1), LoopAsync("search", 2), LoopAsync("add", 3) };
        for (var i = 0; i < fleet.Replicas.Length; i++)
        {
            await Task.Delay(700);
            fleet.ReplaceModel(i, next);   // written beside, renamed over the replica's Inference:ModelPath
            using var reload = await fleet.Replicas[i]!.Client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/model/reload").WithKey());
            Assert.True(reload.IsSuccessStatusCode, $"reload of replica {i}: {(int)reload.StatusCode} {await reload.Content.ReadAsStringAsync()}");
            if (i == 0) await EachReplicaFindsTheSeedsWithItsOwnModelAsync(fleet);   // one new, two old: nothing mixed
        }
        await Task.Delay(700);
        await stop.CancelAsync();
        await Task.WhenAll(loops);
        output.WriteLine(string.Join(", ", counts.Select(c => $"{c.Key}: {c.Value}")));
        Assert.True(bad.IsEmpty, string.Join("\n", bad.Take(10)));
        Assert.True(counts.GetValueOrDefault("search") > 0 && counts.GetValueOrDefault("classify") > 0);

        foreach (var replica in fleet.Replicas) Assert.Equal(nextFingerprint, (await replica!.ReadinessAsync()).Fingerprint);
        await fleet.VerifyConvergedAsync();
        await EachReplicaFindsTheSeedsWithItsOwnModelAsync(fleet);
        var live = fleet.LiveRows().Count;
        Assert.Equal(live.ToString(), fleet.Database.Sql(
            $"SELECT count(*) FROM gallery_vectors v JOIN gallery_images i ON i.id = v.image_id WHERE i.deleted_seq IS NULL AND v.model = '{nextFingerprint}'"));
    }

    /// <summary>Until <paramref name="stop"/>: classify, search or add (label <paramref name="label"/> and a count, then a
    /// pause) one new image at a time through <paramref name="client"/>, each answer to <paramref name="record"/>.</summary>
    static async Task LoadAsync(HttpClient client, string kind, int seed, string label, TimeSpan addPause,
        Func<HttpResponseMessage, Task> record, CancellationToken stop)
    {
        for (var n = 0; !stop.IsCancellationRequested; n++)
        {
            var image = TestImages.Png(seed * 10_000 + n, 32, 32);
            var request = kind switch
            {
                "classify" => new HttpRequestMessage(HttpMethod.Post, "/api/classify") { Content = Http.Raw(image) },
                "search" => new HttpRequestMessage(HttpMethod.Post, "/api/gallery/search?k=3") { Content = Http.Raw(image) },
                _ => new HttpRequestMessage(HttpMethod.Post, $"/api/gallery?label={label}{n}") { Content = Http.Raw(image) }.WithKey(),
            };
            using var answer = await client.SendAsync(request, CancellationToken.None);
            await record(answer);
            if (kind == "add") await Task.Delay(addPause, CancellationToken.None);
        }
    }

    /// <summary>A seed image searched on a replica is found at distance 0 only when the stored vector came from the
    /// model that replica serves: a vector of the other model would be elsewhere in the space.</summary>
    static async Task EachReplicaFindsTheSeedsWithItsOwnModelAsync(ReplicaFleet fleet)
    {
        var last = fleet.Database.Sql("SELECT seq FROM gallery_counter");
        foreach (var replica in fleet.Replicas)
            for (var i = 0; i < 12; i += 4)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/api/gallery/search?k=1") { Content = Http.Raw(TestImages.Png(500 + i, 32, 32)) };
                request.Headers.Add(GalleryEndpoints.MinSequenceHeader, last);
                using var answer = await replica!.Client.SendAsync(request);
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
                var hit = (await answer.JsonAsync<SearchResponse>()).Results[0].Neighbours.Single();
                Assert.True(hit.Label == $"seed{i}" && hit.Distance == 0, $"{replica.Address}: seed{i} searched gave {hit.Label} at {hit.Distance}");
            }
    }

    sealed class Ledger
    {
        public readonly ConcurrentDictionary<string, byte> Attempted = new();
        public readonly ConcurrentDictionary<string, long> Added = new();       // label -> id, 201
        public readonly ConcurrentDictionary<long, byte> DeleteSent = new();
        public readonly ConcurrentDictionary<long, byte> Deleted = new();       // 204
        public readonly ConcurrentQueue<string> Failures = new();
        public int Unanswered;
    }

    /// <summary>Adds (4 of 5) and deletes of its own adds (1 of 5) through the balancer. A request whose replica died
    /// under it may go unanswered (502/503/504 from the balancer, or a dropped connection): unacknowledged, either way
    /// is right. Anything else that is not 201/204 is a failure.</summary>
    static async Task WriteAsync(HttpClient client, int writer, Ledger ledger, CancellationToken stop)
    {
        var mine = new List<long>();
        for (var n = 0; !stop.IsCancellationRequested; n++)
        {
            HttpResponseMessage? answer = null;
            try
            {
                if (n % 5 == 4 && mine.Count > 0)
                {
                    var id = mine[^1];
                    mine.RemoveAt(mine.Count - 1);
                    ledger.DeleteSent[id] = 0;
                    answer = await client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/api/gallery/{id}").WithKey(), CancellationToken.None);
                    if (answer.StatusCode == HttpStatusCode.NoContent) ledger.Deleted[id] = 0;
                    else if ((int)answer.StatusCode is 502 or 503 or 504) Interlocked.Increment(ref ledger.Unanswered);
                    else ledger.Failures.Enqueue($"DELETE {id}: {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");
                    continue;
                }
                var label = $"w{writer}n{n}";
                ledger.Attempted[label] = 0;
                answer = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"/api/gallery?label={label}")
                    { Content = Http.Raw(TestImages.Png(writer * 100_000 + n, 32, 32)) }.WithKey(), CancellationToken.None);
                if (answer.StatusCode == HttpStatusCode.Created)
                {
                    var id = (await answer.JsonAsync<GalleryAddResponse>()).Items.Single().Id;
                    ledger.Added[label] = id;
                    mine.Add(id);
                }
                else if ((int)answer.StatusCode is 502 or 503 or 504) Interlocked.Increment(ref ledger.Unanswered);
                else ledger.Failures.Enqueue($"POST {label}: {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");
            }
            catch (Exception e) when (e is HttpRequestException or IOException)
            {
                Interlocked.Increment(ref ledger.Unanswered);
            }
            finally
            {
                answer?.Dispose();
            }
        }
    }

    static async Task<SearchHit[]> SearchAsync(HttpClient client, byte[] image)
    {
        using var answer = await client.PostAsync("/api/gallery/search?k=1", Http.Raw(image));
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        return (await answer.JsonAsync<SearchResponse>()).Results[0].Neighbours;
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>A PostgreSQL server, N service processes on it and HAProxy in front. Tests that start one run one at a
/// time (a collection): each fleet takes both cores while it starts.</summary>
public sealed class ReplicaFleet : IAsyncDisposable
{
    public const string Collection = "replicas";
    readonly TempDir _dir;
    readonly Dictionary<string, string> _settings;

    ReplicaFleet(TempDir dir, PostgresServer database, ServiceProcess?[] replicas, Haproxy balancer, Dictionary<string, string> settings)
    {
        _dir = dir;
        Database = database;
        Replicas = replicas;
        Balancer = balancer;
        _settings = settings;
    }

    public PostgresServer Database { get; }
    public ServiceProcess?[] Replicas { get; }
    public Haproxy Balancer { get; }

    static string ModelPath(TempDir dir, int replica) => dir.File($"model-{replica}.onnx");

    public static async Task<ReplicaFleet> StartAsync(TempDir dir, int replicas, int modelSeed = 5)
    {
        var database = PostgresServer.Start();
        var settings = new Dictionary<string, string>
        {
            ["Gallery__Store"] = "Postgres",
            ["ConnectionStrings__Gallery"] = database.ConnectionString,
            ["Gallery__PollIntervalMs"] = "500",
            ["Uploads__MaxK"] = "10000",
        };
        var services = new ServiceProcess?[replicas];
        try
        {
            // One file, copied: a model written twice differs (its provenance has a time), and so would its fingerprint.
            TestModel.Write(ModelPath(dir, 0), modelSeed);
            for (var i = 1; i < replicas; i++) File.Copy(ModelPath(dir, 0), ModelPath(dir, i));
            // All at once on an empty database: the schema is created once, under the migration lock.
            var started = await Task.WhenAll(Enumerable.Range(0, replicas).Select(i =>
                ServiceProcess.StartAsync(ModelPath(dir, i), dir.File($"unused-{i}.db"), settings, TimeSpan.FromSeconds(120))));
            started.CopyTo(services, 0);
            var balancer = await Haproxy.StartAsync(started.Select(s => s.Address));
            await balancer.WaitUpAsync();
            return new ReplicaFleet(dir, database, services, balancer, settings);
        }
        catch
        {
            foreach (var s in services) s?.Dispose();
            database.Dispose();
            throw;
        }
    }

    /// <summary>Starts replica <paramref name="index"/> again (after a kill) on a new port and points the balancer at it.</summary>
    public async Task RestartAsync(int index)
    {
        Replicas[index]?.Dispose();
        Replicas[index] = null;
        var service = await ServiceProcess.StartAsync(ModelPath(_dir, index), _dir.File($"unused-{index}.db"), _settings, TimeSpan.FromSeconds(120));
        Replicas[index] = service;
        await Balancer.SetServerAsync(index, service.Address);
    }

    /// <summary>Puts <paramref name="model"/> at replica <paramref name="index"/>'s model path the way a deployment
    /// should: a copy beside it, renamed over it.</summary>
    public void ReplaceModel(int index, string model)
    {
        var path = ModelPath(_dir, index);
        File.Copy(model, path + ".new", overwrite: true);
        File.Move(path + ".new", path, overwrite: true);
    }

    public sealed record Row(long Id, string? Label, string Sha256);

    public List<Row> LiveRows() => [.. Database.Sql("SELECT id, coalesce(label, ''), sha256 FROM gallery_images WHERE deleted_seq IS NULL ORDER BY id")
        .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('|'))
        .Select(f => new Row(long.Parse(f[0]), f[1].Length == 0 ? null : f[1], f[2]))];

    /// <summary>Waits until every replica reflects the table's last change, then checks that each one's listing and
    /// search index hold exactly the table's live rows.</summary>
    public async Task VerifyConvergedAsync()
    {
        var last = long.Parse(Database.Sql("SELECT seq FROM gallery_counter"));
        var rows = LiveRows();
        var ids = rows.Select(r => r.Id).ToList();
        foreach (var replica in Replicas)
        {
            Assert.NotNull(replica);
            var clock = Stopwatch.StartNew();
            while (true)
            {
                using var probe = new HttpRequestMessage(HttpMethod.Post, "/api/gallery/search?k=1") { Content = Http.Raw(TestImages.Png(0, 32, 32)) };
                probe.Headers.Add(GalleryEndpoints.MinSequenceHeader, last.ToString());
                using var answer = await replica.Client.SendAsync(probe);
                if (answer.IsSuccessStatusCode) break;
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{replica.Address} did not reach change {last}: {(int)answer.StatusCode} " +
                    $"{await answer.Content.ReadAsStringAsync()}\n{replica.Log}");
            }
            var listed = await replica.ListGalleryAsync();
            Assert.Equal(rows.Select(r => (r.Id, r.Label, r.Sha256)), listed.Select(i => (i.Id, i.Label, i.Sha256)));
            if (ids.Count == 0) continue;
            // The index: every other row is a neighbour of the first, and the first is in it.
            using var similar = await replica.Client.GetAsync($"/api/gallery/{ids[0]}/similar?k={ids.Count + 5}");
            Assert.True(similar.IsSuccessStatusCode, $"{replica.Address}: row {ids[0]} is not in the index: {(int)similar.StatusCode}");
            var indexed = (await similar.JsonAsync<SimilarResponse>()).Neighbours.Select(h => h.Id).Append(ids[0]).Order();
            Assert.Equal(ids, indexed);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Balancer.Dispose();
        foreach (var s in Replicas) s?.Dispose();
        Database.Dispose();
        await Task.CompletedTask;
    }
}

[CollectionDefinition(ReplicaFleet.Collection, DisableParallelization = true)]
public sealed class ReplicaCollection;
