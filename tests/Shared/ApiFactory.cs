using System.Net;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace AlexNet.Tests.Shared;

/// <summary>
/// The real service on a test server: a real model file, a real SQLite file, settings in memory. Defaults: CPU,
/// API key "test-key", a generous rate limit, batches without delay; <c>settings</c> override them key by key.
/// <see cref="StartKestrelAsync"/> puts it on a real listener instead, which a browser can reach (a TestServer cannot).
/// </summary>
public sealed class ApiFactory(string modelPath, string databasePath, IDictionary<string, string?>? settings = null,
    Action<IServiceCollection>? services = null) : WebApplicationFactory<Program>
{
    public const string Key = "test-key";

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        var values = new Dictionary<string, string?>
        {
            ["Inference:ModelPath"] = modelPath,
            ["Inference:Provider"] = "Cpu",
            ["Inference:MaxBatchDelayMs"] = "0",
            ["Inference:IntraOpThreads"] = "1",
            ["Gallery:DatabasePath"] = databasePath,
            ["Security:ApiKey"] = Key,
            ["RateLimit:PermitLimit"] = "100000",
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (k, v) in settings ?? new Dictionary<string, string?>()) values[k] = v;
        builder.UseEnvironment("Testing");
        builder.ConfigureAppConfiguration(c => c.AddInMemoryCollection(values));
        if (services is not null) builder.ConfigureTestServices(services);
    }

    /// <summary>A TestServer client once /health/ready says 200.</summary>
    public async Task<HttpClient> ReadyClientAsync()
    {
        var client = CreateClient();
        await WaitReadyAsync(client);
        return client;
    }

    /// <summary>Starts Kestrel on 127.0.0.1 and returns its address once /health/ready says 200.</summary>
    public async Task<Uri> StartKestrelAsync()
    {
        UseKestrel(o => o.Listen(IPAddress.Loopback, 0));   // port 0: the OS picks a free one
        StartServer();
        var address = new Uri(Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single());
        using var http = new HttpClient { BaseAddress = address };
        await WaitReadyAsync(http);
        return address;
    }

    static async Task WaitReadyAsync(HttpClient client)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var response = await client.GetAsync("/health/ready");
            if (response.IsSuccessStatusCode) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Not ready after 30 s: {await response.Content.ReadAsStringAsync()}");
            await Task.Delay(20);
        }
    }
}
