using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace AlexNet.Api.Tests;

/// <summary>
/// Crash consistency of the gallery: the real service in a child process takes a stream of adds and deletes from
/// three writers and is killed with SIGKILL at a random moment, 20 times; after each kill SQLite's integrity check
/// must pass, and after each restart every acknowledged write must be there (acknowledged deletes gone), nothing
/// must be duplicated or half-written, and the in-memory index must match the database row for row.
/// </summary>
public sealed class GalleryCrashTests(ITestOutputHelper output) : IDisposable
{
    const int Kills = 20;
    const int Writers = 3;
    readonly TempDir _dir = new();
    int _committedUnanswered;   // adds that were committed but killed before their answer (allowed; whole)

    /// <summary>What the writers were told, over all runs of the service.</summary>
    sealed class Ledger
    {
        public readonly ConcurrentDictionary<string, byte> Attempted = new();          // labels sent
        public readonly ConcurrentDictionary<string, GalleryItem> Added = new();       // label -> 201 answer
        public readonly ConcurrentDictionary<long, byte> Deleted = new();              // 204 answers
        public readonly ConcurrentDictionary<long, byte> DeleteUnanswered = new();     // sent, no answer: either way is right
        public readonly ConcurrentQueue<string> Failures = new();                      // any non-2xx from a live service
    }

    [Fact]
    public async Task AcknowledgedGalleryWritesSurviveSigkillAndTheIndexMatchesTheDatabase()
    {
        var model = _dir.File("model.onnx");
        TestModel.Write(model, seed: 5);
        var fingerprint = OnnxClassifier.Fingerprint(model);
        var database = _dir.File("gallery.db");
        var ledger = new Ledger();
        var rng = new Random(20261128);
        var watch = Stopwatch.StartNew();
        var starts = new List<double>();

        for (var cycle = 0; ; cycle++)
        {
            var startWatch = Stopwatch.StartNew();
            using var service = await ServiceProcess.StartAsync(model, database);
            starts.Add(startWatch.Elapsed.TotalSeconds);
            if (cycle > 0) await VerifyAsync(service, database, fingerprint, ledger, everyRow: cycle == Kills, rng);
            if (cycle == Kills) break;

            using var stop = new CancellationTokenSource();
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() => WriteAsync(service, cycle, w, ledger, stop.Token))).ToArray();
            // Two acknowledged adds in this cycle first (at most 10 s): on a busy machine the first writes can take longer
            // than the random delay, and a kill before any write is acknowledged tests little. Then a random moment.
            var before = ledger.Added.Count;
            for (var wait = Stopwatch.StartNew(); ledger.Added.Count < before + 2 && wait.Elapsed < TimeSpan.FromSeconds(10);) await Task.Delay(10);
            await Task.Delay(rng.Next(50, 600));
            service.Kill();
            await stop.CancelAsync();
            await Task.WhenAll(writers);
            Assert.Equal("ok", IntegrityCheck(database));
        }

        output.WriteLine($"{Kills} kills in {watch.Elapsed.TotalSeconds:F1} s: {ledger.Attempted.Count} adds sent, {ledger.Added.Count} acknowledged, " +
            $"{ledger.Deleted.Count} deletes acknowledged, {ledger.DeleteUnanswered.Count} unanswered, {_committedUnanswered} unanswered adds " +
            $"committed (whole); start to ready " +
            $"{starts.Min():F2}-{starts.Max():F2} s (median {starts.Order().ElementAt(starts.Count / 2):F2} s).");
        Assert.True(ledger.Failures.IsEmpty, string.Join("\n", ledger.Failures.Take(10)));
        Assert.True(ledger.Added.Count >= 2 * Kills, $"only {ledger.Added.Count} acknowledged adds: the kills came too early to test much");
        Assert.True(ledger.Attempted.Count > ledger.Added.Count, "no write was in flight at any kill");
    }

    /// <summary>Adds (4 of 5) and deletes of its own earlier adds (1 of 5) until the service dies.</summary>
    static async Task WriteAsync(ServiceProcess service, int cycle, int writer, Ledger ledger, CancellationToken stop)
    {
        using var client = new HttpClient { BaseAddress = service.Address, Timeout = TimeSpan.FromSeconds(30) };
        var mine = ledger.Added.Values.Where(i => i.Label!.Contains($"w{writer}n", StringComparison.Ordinal) && !ledger.Deleted.ContainsKey(i.Id)
            && !ledger.DeleteUnanswered.ContainsKey(i.Id)).Select(i => i.Id).ToList();
        for (var n = 0; !stop.IsCancellationRequested; n++)
        {
            try
            {
                if (n % 5 == 4 && mine.Count > 0)
                {
                    var id = mine[^1];
                    mine.RemoveAt(mine.Count - 1);
                    ledger.DeleteUnanswered[id] = 0;
                    using var delete = await client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/api/gallery/{id}").WithKey(), stop);
                    if (delete.StatusCode != HttpStatusCode.NoContent)
                        ledger.Failures.Enqueue($"DELETE {id}: {(int)delete.StatusCode} {await delete.Content.ReadAsStringAsync()}");
                    ledger.DeleteUnanswered.TryRemove(id, out _);
                    ledger.Deleted[id] = 0;
                    continue;
                }
                var label = $"c{cycle}w{writer}n{n}";
                ledger.Attempted[label] = 0;
                var image = TestImages.Png(cycle * 1000 + writer * 100 + n, 32, 32);
                using var add = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"/api/gallery?label={label}")
                    { Content = Http.Raw(image) }.WithKey(), stop);
                if (add.StatusCode != HttpStatusCode.Created)
                {
                    ledger.Failures.Enqueue($"POST {label}: {(int)add.StatusCode} {await add.Content.ReadAsStringAsync()}");
                    continue;
                }
                var item = (await add.Content.ReadFromJsonAsync<GalleryAddResponse>(stop))!.Items.Single();
                ledger.Added[label] = item;
                mine.Add(item.Id);
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                return;   // killed: whatever was in flight is unacknowledged
            }
        }
    }

    async Task VerifyAsync(ServiceProcess service, string database, string fingerprint, Ledger ledger, bool everyRow, Random rng)
    {
        var listed = await service.ListGalleryAsync();
        var rows = ReadRows(database);

        // No duplicates, nothing invented.
        Assert.Equal(listed.Count, listed.Select(i => i.Id).Distinct().Count());
        Assert.Equal(listed.Count, listed.Select(i => i.Label).Distinct().Count());
        Assert.All(listed, i => Assert.True(ledger.Attempted.ContainsKey(i.Label!), $"{i.Label} was never sent"));
        _committedUnanswered = listed.Count(i => !ledger.Added.ContainsKey(i.Label!));

        // Every acknowledged add is there, as acknowledged, unless a delete of it was sent; acknowledged deletes are gone.
        var byId = listed.ToDictionary(i => i.Id);
        foreach (var added in ledger.Added.Values)
        {
            if (ledger.Deleted.ContainsKey(added.Id) || ledger.DeleteUnanswered.ContainsKey(added.Id)) continue;
            Assert.True(byId.TryGetValue(added.Id, out var found), $"acknowledged add {added.Id} ({added.Label}) is missing\n{service.Log}");
            Assert.Equal((added.Label, added.Sha256, added.Width, added.Height), (found.Label, found.Sha256, found.Width, found.Height));
        }
        foreach (var id in ledger.Deleted.Keys) Assert.False(byId.ContainsKey(id), $"acknowledged delete {id} came back");

        // The service's view is the database's, row for row, and every row is whole.
        Assert.Equal(rows.Select(r => (r.Id, r.Label, r.Sha256, r.Width, r.Height)),
            listed.Select(i => (i.Id, i.Label, i.Sha256, i.Width, i.Height)));
        var model = (await service.Client.GetFromJsonAsync<ModelResponse>("/api/model"))!;
        foreach (var r in rows)
        {
            Assert.Equal(fingerprint, r.Model);
            Assert.Equal(4L * model.FeatureDim, r.FeatureBytes);        // float32 FC7
            Assert.Equal((64, 64), Size(r.Prepared));                   // the compact preset's resize square
            Assert.True(Size(r.Thumbnail).Width > 0);
        }
        var ready = await service.ReadinessAsync();
        Assert.Equal(rows.Count, ready.GalleryImages);

        // And the search index holds each of them (all at the end, a sample after the other restarts).
        var check = everyRow ? rows : [.. rows.OrderBy(_ => rng.Next()).Take(5)];
        foreach (var r in check)
        {
            using var similar = await service.Client.GetAsync($"/api/gallery/{r.Id}/similar?k=1");
            Assert.True(similar.IsSuccessStatusCode, $"gallery image {r.Id} is not in the search index: {(int)similar.StatusCode}");
        }
    }

    static (int Width, int Height) Size(byte[] png)
    {
        var info = Image.Identify(png);
        return (info.Width, info.Height);
    }

    sealed record Row(long Id, string? Label, string Sha256, int Width, int Height, string Model, long FeatureBytes, byte[] Prepared, byte[] Thumbnail);

    static List<Row> ReadRows(string database)
    {
        using var db = new SqliteConnection($"Data Source={database};Mode=ReadOnly;Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT id, label, sha256, width, height, model, length(features), prepared_png, thumbnail_png FROM images ORDER BY id";
        using var r = cmd.ExecuteReader();
        var rows = new List<Row>();
        while (r.Read())
            rows.Add(new Row(r.GetInt64(0), r.IsDBNull(1) ? null : r.GetString(1), r.GetString(2), r.GetInt32(3), r.GetInt32(4),
                r.GetString(5), r.GetInt64(6), (byte[])r.GetValue(7), (byte[])r.GetValue(8)));
        return rows;
    }

    /// <summary>Run right after the kill, on the files as the crash left them (this connection replays the WAL,
    /// as the service's next start would).</summary>
    static string IntegrityCheck(string database)
    {
        using var db = new SqliteConnection($"Data Source={database};Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "PRAGMA integrity_check";
        return (string)cmd.ExecuteScalar()!;
    }

    public void Dispose() => _dir.Dispose();
}
