using System.Net.Sockets;
using Npgsql;
using Xunit.Abstractions;

namespace AlexNet.Api.Tests;

/// <summary>
/// The engines the replica tests stand on, each checked on its own: a real PostgreSQL server of the test's own
/// (<see cref="PostgresServer"/>: durable settings, a committed row survives a fast stop and a SIGKILL) and Debian's
/// HAProxy (<see cref="Haproxy"/>) in front of real service processes (round robin, a dead replica taken out and
/// brought back on a new port, and a request whose replica closed the connection without answering replayed only when
/// replaying has no effect).
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class ReplicaHarnessTests(ModelFixture models, ITestOutputHelper output) : IDisposable
{
    readonly TempDir _dir = new();
    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task PostgresKeepsCommittedRowsAcrossAFastStopAndASigkill()
    {
        string folder;
        var clock = Stopwatch.StartNew();
        using (var pg = PostgresServer.Start())
        {
            output.WriteLine($"initdb and start: {clock.Elapsed.TotalSeconds:F1} s");
            folder = pg.Folder;
            Assert.True(Directory.Exists(pg.DataDirectory));
            await using (var db = await OpenAsync(pg))
            {
                Assert.Equal(1, await ScalarAsync<int>(db, "SELECT 1"));
                Assert.Equal("gallery", await ScalarAsync<string>(db, "SELECT current_database()"));
                foreach (var (setting, value) in new[] { ("fsync", "on"), ("synchronous_commit", "on"), ("full_page_writes", "on"), ("listen_addresses", "127.0.0.1") })
                    Assert.Equal(value, await ScalarAsync<string>(db, $"SHOW {setting}"));
                await ExecuteAsync(db, "CREATE TABLE t (id int PRIMARY KEY, note text NOT NULL)");
                await ExecuteAsync(db, "INSERT INTO t VALUES (1, 'before stop')");
            }

            clock.Restart();
            pg.Stop();
            output.WriteLine($"fast stop: {clock.Elapsed.TotalSeconds:F1} s");
            Assert.False(pg.IsRunning);
            NpgsqlConnection.ClearAllPools();
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => OpenAsync(pg));   // down means down

            clock.Restart();
            pg.Start();
            output.WriteLine($"start: {clock.Elapsed.TotalSeconds:F1} s");
            await using (var db = await OpenAsync(pg))
            {
                Assert.Equal("before stop", await ScalarAsync<string>(db, "SELECT note FROM t WHERE id = 1"));
                await ExecuteAsync(db, "INSERT INTO t VALUES (2, 'before kill')");   // autocommit: acknowledged = committed
            }
            var postmaster = pg.ProcessId!.Value;
            pg.Kill();
            Assert.False(pg.IsRunning);
            Assert.Throws<ArgumentException>(() => Process.GetProcessById(postmaster));
            NpgsqlConnection.ClearAllPools();

            clock.Restart();
            pg.Start();   // crash recovery replays the WAL
            output.WriteLine($"start after SIGKILL (recovery): {clock.Elapsed.TotalSeconds:F1} s");
            await using (var db = await OpenAsync(pg))
                Assert.Equal(["before kill", "before stop"], await ColumnAsync(db, "SELECT note FROM t ORDER BY note"));
            Assert.Equal("2", pg.Sql("SELECT count(*) FROM t"));   // the same rows through psql
        }
        Assert.False(Directory.Exists(folder), $"{folder} is still there after Dispose");
    }

    [Fact]
    public async Task HaproxyBalancesRoundRobinAndTakesADeadReplicaOutAndBackOnANewPort()
    {
        // The default store (SQLite, one file each): exactly the split a shared store removes.
        var replicas = new ServiceProcess?[2];
        try
        {
            for (var i = 0; i < replicas.Length; i++)
                replicas[i] = await ServiceProcess.StartAsync(models.ModelA, _dir.File($"gallery-{i}.db"));
            using var lb = await Haproxy.StartAsync(replicas.Select(r => r!.Address));
            await lb.WaitUpAsync(2);

            // Round robin: two adds in a row land one on each replica.
            for (var n = 0; n < 2; n++)
            {
                using var add = await lb.Client.SendAsync(new HttpRequestMessage(HttpMethod.Post, $"/api/gallery?label=lb{n}")
                    { Content = Http.Raw(TestImages.Png(n, 32, 32)) }.WithKey());
                Assert.Equal(HttpStatusCode.Created, add.StatusCode);
            }
            foreach (var r in replicas) Assert.Single(await r!.ListGalleryAsync());
            for (var n = 0; n < 20; n++)
                Assert.Equal(HttpStatusCode.OK, (await lb.Client.GetAsync("/api/model")).StatusCode);
            var servers = await lb.ServersAsync();
            Assert.Equal([Haproxy.ServerName(0), Haproxy.ServerName(1)], servers.Select(s => s.Name));
            Assert.All(servers, s => Assert.Equal(11, s.Requests));   // 1 add + 10 reads each (health checks are not counted)

            // A dead replica: no client sees it (a refused connection is redispatched), and the checks take it out.
            replicas[0]!.Kill();
            for (var n = 0; n < 10; n++)
                Assert.Equal(HttpStatusCode.OK, (await lb.Client.GetAsync("/api/model")).StatusCode);
            await lb.WaitUpAsync(1);
            Assert.Equal(["DOWN", "UP"], (await lb.ServersAsync()).Select(s => s.Status));

            // Back on another port (ServiceProcess picks a free one): the balancer is told, the checks bring it in.
            replicas[0]!.Dispose();
            replicas[0] = await ServiceProcess.StartAsync(models.ModelA, _dir.File("gallery-0.db"));
            await lb.SetServerAsync(0, replicas[0]!.Address);
            await lb.WaitUpAsync(2);
            var before = (await lb.ServersAsync())[0].Requests;
            for (var n = 0; n < 4; n++)
                Assert.Equal(HttpStatusCode.OK, (await lb.Client.GetAsync("/api/model")).StatusCode);
            Assert.Equal(before + 2, (await lb.ServersAsync())[0].Requests);
            output.WriteLine(lb.Log);
        }
        finally
        {
            foreach (var r in replicas) r?.Dispose();
        }
    }

    [Fact]
    public async Task HaproxyReplaysOnlyRequestsWithoutEffectsWhenAReplicaDiesBeforeAnswering()
    {
        // Two replicas that pass the health check and then close every other connection without a byte: what a
        // replica SIGKILLed in the middle of a request looks like from the balancer.
        using var a = new MuteReplica();
        using var b = new MuteReplica();
        using var lb = await Haproxy.StartAsync([a.Address, b.Address]);
        await lb.WaitUpAsync(2);

        async Task<int> AttemptsAsync(HttpMethod method, string path)
        {
            var before = a.Requests + b.Requests;
            using var request = new HttpRequestMessage(method, path);
            if (method != HttpMethod.Get && method != HttpMethod.Delete) request.Content = Http.Raw(TestImages.Png(1, 32, 32));
            using var response = await lb.Client.SendAsync(request.WithKey());   // on the connection of the request before
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);   // nobody answered
            return a.Requests + b.Requests - before;
        }

        // retries 3: the first try and three more, for requests a replay cannot change anything with.
        Assert.Equal(4, await AttemptsAsync(HttpMethod.Get, "/api/gallery/1"));
        Assert.Equal(4, await AttemptsAsync(HttpMethod.Post, "/api/classify"));
        Assert.Equal(4, await AttemptsAsync(HttpMethod.Post, "/api/gallery/search"));
        // A write may have been committed by the replica that died: sent once, and the client hears 502.
        Assert.Equal(1, await AttemptsAsync(HttpMethod.Post, "/api/gallery"));
        Assert.Equal(1, await AttemptsAsync(HttpMethod.Delete, "/api/gallery/1"));
        Assert.Equal(1, await AttemptsAsync(HttpMethod.Post, "/api/model/reload"));
    }

    [Fact]
    public async Task MissingEnginesAreNamedWithWhatToInstall()
    {
        var empty = _dir.File("no-binaries");
        Directory.CreateDirectory(empty);
        var saved = (Environment.GetEnvironmentVariable("ALEXNET_PG_BIN"), Environment.GetEnvironmentVariable("ALEXNET_HAPROXY"));
        try
        {
            Environment.SetEnvironmentVariable("ALEXNET_PG_BIN", empty);
            Environment.SetEnvironmentVariable("ALEXNET_HAPROXY", Path.Combine(empty, "haproxy"));
            var pg = Assert.Throws<InvalidOperationException>(() => PostgresServer.Start());
            Assert.Contains(Path.Combine(empty, "initdb"), pg.Message);
            Assert.Contains("apt-get install postgresql-15", pg.Message);
            var lb = await Assert.ThrowsAsync<InvalidOperationException>(() => Haproxy.StartAsync([new Uri("http://127.0.0.1:1")]));
            Assert.Contains("apt-get install haproxy", lb.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable("ALEXNET_PG_BIN", saved.Item1);
            Environment.SetEnvironmentVariable("ALEXNET_HAPROXY", saved.Item2);
        }
    }

    /// <summary>Answers GET /health/ready with 200 and closes every other request's connection without answering.</summary>
    sealed class MuteReplica : IDisposable
    {
        readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        readonly CancellationTokenSource _stop = new();
        int _requests;

        public MuteReplica()
        {
            _listener.Start();
            Address = new Uri($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");
            _ = Task.Run(AcceptAsync);
        }

        public Uri Address { get; }
        public int Requests => Volatile.Read(ref _requests);

        async Task AcceptAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
                _ = Task.Run(() => ServeAsync(client));
            }
        }

        async Task ServeAsync(TcpClient client)
        {
            using (client)
            {
                try
                {
                    var stream = client.GetStream();
                    var head = new StringBuilder();
                    var buffer = new byte[4096];
                    while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal))
                    {
                        var n = await stream.ReadAsync(buffer, _stop.Token);
                        if (n == 0) return;
                        head.Append(Encoding.ASCII.GetString(buffer, 0, n));
                    }
                    if (head.ToString().StartsWith("GET /health/ready ", StringComparison.Ordinal))
                    {
                        await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray(), _stop.Token);
                        return;
                    }
                    Interlocked.Increment(ref _requests);
                    client.Client.LingerState = new LingerOption(true, 0);   // gone, as a killed process's socket
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or SocketException) { }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _listener.Stop();
            _stop.Dispose();
        }
    }

    static async Task<NpgsqlConnection> OpenAsync(PostgresServer pg)
    {
        var db = new NpgsqlConnection(pg.ConnectionString);
        try
        {
            await db.OpenAsync();
            return db;
        }
        catch
        {
            await db.DisposeAsync();
            throw;
        }
    }

    static async Task<T> ScalarAsync<T>(NpgsqlConnection db, string sql)
    {
        await using var command = new NpgsqlCommand(sql, db);
        return (T)(await command.ExecuteScalarAsync())!;
    }

    static async Task ExecuteAsync(NpgsqlConnection db, string sql)
    {
        await using var command = new NpgsqlCommand(sql, db);
        await command.ExecuteNonQueryAsync();
    }

    static async Task<List<string>> ColumnAsync(NpgsqlConnection db, string sql)
    {
        await using var command = new NpgsqlCommand(sql, db);
        await using var reader = await command.ExecuteReaderAsync();
        var values = new List<string>();
        while (await reader.ReadAsync()) values.Add(reader.GetString(0));
        return values;
    }
}
