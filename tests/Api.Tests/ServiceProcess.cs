namespace AlexNet.Api.Tests;

/// <summary>
/// The real service as a child process: <c>dotnet AlexNet.Api.dll</c> from this test's output folder (the project
/// reference copies it there with its deps.json and runtimeconfig), configured by environment variables only, on
/// 127.0.0.1 and a free port. <see cref="Kill"/> is SIGKILL: no shutdown code runs.
/// </summary>
public sealed class ServiceProcess : IDisposable
{
    readonly Process _process;
    readonly StringBuilder _log = new();

    ServiceProcess(Process process, Uri address)
    {
        _process = process;
        Address = address;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
    }

    public Uri Address { get; }
    public HttpClient Client { get; }
    public int Id => _process.Id;

    /// <summary>The last lines the service wrote (Warning and above), for failure messages.</summary>
    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    /// <summary>This build's service; ALEXNET_TEST_API_DLL names another build's (to see a test fail on older code).</summary>
    public static string ApiDll => Environment.GetEnvironmentVariable("ALEXNET_TEST_API_DLL") is { Length: > 0 } other ? other
        : Path.Combine(AppContext.BaseDirectory, "AlexNet.Api.dll");

    /// <summary>Starts the service and waits until /health/ready says 200 (at most <paramref name="timeout"/>).</summary>
    /// <param name="openFileLimit">The child's RLIMIT_NOFILE (soft and hard), set with prlimit; null: inherited.</param>
    public static async Task<ServiceProcess> StartAsync(string modelPath, string databasePath, IDictionary<string, string>? settings = null,
        TimeSpan? timeout = null, int? openFileLimit = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            var port = Endpoint.FreePort();
            var service = Launch(modelPath, databasePath, port, settings, openFileLimit);
            try
            {
                await service.WaitReadyAsync(timeout ?? TimeSpan.FromSeconds(60));
                return service;
            }
            catch (Exception) when (attempt < 3 && service._process.HasExited)
            {
                service.Dispose();   // most likely the port was taken between the probe and the bind: try another
            }
            catch
            {
                service.Dispose();
                throw;
            }
        }
    }

    /// <summary>Starts the service without waiting for it (it may never be ready, or exit).</summary>
    public static ServiceProcess Launch(string modelPath, string databasePath, IDictionary<string, string>? settings = null) =>
        Launch(modelPath, databasePath, Endpoint.FreePort(), settings, null);

    static ServiceProcess Launch(string modelPath, string databasePath, int port, IDictionary<string, string>? settings, int? openFileLimit)
    {
        Assert.True(File.Exists(ApiDll), $"{ApiDll} is missing: the Api project reference should copy it.");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var info = new ProcessStartInfo(openFileLimit is null ? dotnet : "prlimit")
        {
            WorkingDirectory = AppContext.BaseDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (openFileLimit is { } files)
            foreach (var a in new[] { $"--nofile={files}:{files}", "--", dotnet }) info.ArgumentList.Add(a);   // prlimit execs the host
        info.ArgumentList.Add(ApiDll);
        var env = new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}",
            ["ASPNETCORE_ENVIRONMENT"] = "Production",
            ["DOTNET_gcServer"] = "0",                        // one small heap: this machine has 2 cores and other work
            ["Inference__ModelPath"] = modelPath,
            ["Inference__Provider"] = "Cpu",
            ["Inference__IntraOpThreads"] = "1",
            ["Inference__MaxBatchSize"] = "4",
            ["Gallery__DatabasePath"] = databasePath,
            ["Security__ApiKey"] = ApiFactory.Key,
            ["Grpc__Url"] = "",                               // off unless a test gives it a free port (processes run in parallel)
            ["RateLimit__PermitLimit"] = "1000000",
            ["Logging__LogLevel__Default"] = "Warning",
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Warning",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string>()) env[k] = v;
        foreach (var (k, v) in env) info.Environment[k] = v;
        var process = new Process { StartInfo = info };
        var service = new ServiceProcess(process, new Uri($"http://127.0.0.1:{port}"));
        process.OutputDataReceived += (_, e) => service.Append(e.Data);
        process.ErrorDataReceived += (_, e) => service.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return service;
    }

    void Append(string? line)
    {
        if (line is null) return;
        lock (_log)
        {
            _log.AppendLine(line);
            if (_log.Length > 20_000) _log.Remove(0, _log.Length - 10_000);
        }
    }

    async Task WaitReadyAsync(TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"The service exited with {_process.ExitCode}: {Log}");
            try
            {
                using var ready = await Client.GetAsync("/health/ready");
                if (ready.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }   // not listening yet
            if (deadline.Elapsed > timeout) throw new TimeoutException($"Not ready after {timeout}: {Log}");
            await Task.Delay(50);
        }
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Whether the process still runs; when not, why (its exit code and the end of its log), for a failure message.</summary>
    public string Alive() => _process.HasExited ? $"exited with {_process.ExitCode}: ...{Log[^Math.Min(Log.Length, 3000)..]}" : "running";
    public int ExitCode => _process.ExitCode;

    /// <summary>Waits for the process to end by itself (at most <paramref name="timeout"/>); false if it still runs.</summary>
    public bool WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) return false;
        _process.WaitForExit();   // and for the output readers to finish
        return true;
    }

    /// <summary>Resident memory of the process now (VmRSS), in bytes.</summary>
    public long Rss
    {
        get
        {
            var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
    }

    /// <summary>SIGKILL, and wait until the process is gone.</summary>
    public void Kill()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: false);   // SIGKILL on Unix
        _process.WaitForExit(10_000);
    }

    /// <summary>Every gallery item, by paging GET /api/gallery.</summary>
    public async Task<List<GalleryItem>> ListGalleryAsync()
    {
        var all = new List<GalleryItem>();
        while (true)
        {
            var page = await (await Client.GetAsync($"/api/gallery?offset={all.Count}&limit=1000")).JsonAsync<GalleryListResponse>();
            all.AddRange(page.Items);
            if (page.Items.Length == 0 || all.Count >= page.Total) return all;
        }
    }

    public async Task<ReadinessResponse> ReadinessAsync() =>
        (await Client.GetFromJsonAsync<ReadinessResponse>("/health/ready"))!;

    public void Dispose()
    {
        try { Kill(); } catch (InvalidOperationException) { }   // never started
        Client.Dispose();
        _process.Dispose();
    }
}
