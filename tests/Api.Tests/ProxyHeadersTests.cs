namespace AlexNet.Api.Tests;

/// <summary>ForwardedHeaders:TrustedProxies: behind a trusted proxy the rate limit is per client (X-Forwarded-For);
/// without one configured the header changes nothing, so a client cannot pick a fresh bucket by sending it. Real
/// processes on Kestrel: the proxy is this test, connecting from 127.0.0.1.</summary>
[Collection(ApiCollection.Name)]
public sealed class ProxyHeadersTests(ModelFixture models) : IDisposable
{
    readonly TempDir _dir = new();

    static async Task<HttpStatusCode> AsClientAsync(ServiceProcess service, string address)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/model");
        request.Headers.Add("X-Forwarded-For", address);
        using var response = await service.Client.SendAsync(request);
        return response.StatusCode;
    }

    static Dictionary<string, string> Limited(string? trusted) => new()
    {
        ["RateLimit__PermitLimit"] = "2",
        ["RateLimit__WindowSeconds"] = "300",
        ["ForwardedHeaders__TrustedProxies__0"] = trusted ?? "",
    };

    [Fact]
    public async Task BehindATrustedProxyEachForwardedClientHasItsOwnBucket()
    {
        using var service = await ServiceProcess.StartAsync(models.ModelA, _dir.File("a.db"), Limited("127.0.0.1"));
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests],
            [await AsClientAsync(service, "203.0.113.7"), await AsClientAsync(service, "203.0.113.7"), await AsClientAsync(service, "203.0.113.7")]);
        Assert.Equal(HttpStatusCode.OK, await AsClientAsync(service, "203.0.113.8"));   // another client behind the proxy
    }

    [Fact]
    public async Task WithoutTrustedProxiesTheHeaderIsIgnored()
    {
        using var service = await ServiceProcess.StartAsync(models.ModelA, _dir.File("b.db"), Limited(null));
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests],
            [await AsClientAsync(service, "203.0.113.7"), await AsClientAsync(service, "203.0.113.8"), await AsClientAsync(service, "203.0.113.9")]);
    }

    [Fact]
    public async Task AnEntryThatIsNeitherAnAddressNorANetworkStopsTheStart()
    {
        await using var factory = new ApiFactory(models.ModelA, _dir.File("c.db"),
            new Dictionary<string, string?> { ["ForwardedHeaders:TrustedProxies:0"] = "proxy.example" });
        var e = Assert.ThrowsAny<Exception>(() => factory.CreateClient());
        Assert.Contains("ForwardedHeaders:TrustedProxies has 'proxy.example'", ServiceTests.Messages(e));
    }

    public void Dispose() => _dir.Dispose();
}
