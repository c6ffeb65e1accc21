using System.Net;
using Microsoft.AspNetCore.HttpOverrides;
using IPNetwork = System.Net.IPNetwork;

namespace AlexNet.Api.Http;

/// <summary>The "ForwardedHeaders" section: which reverse proxies may say who the client is.</summary>
public sealed class ProxyOptions
{
    /// <summary>Addresses ("10.0.0.5") or networks ("172.18.0.0/16") of reverse proxies whose X-Forwarded-For and
    /// X-Forwarded-Proto are believed. Empty (the default): the headers are ignored and every client is the address
    /// it connects from, so nobody can pick their own rate-limit bucket by sending the header.</summary>
    public string[] TrustedProxies { get; set; } = [];
}

/// <summary>
/// Behind a reverse proxy every request comes from the proxy's address, so the per-client rate limit would be one
/// bucket for everybody. With ForwardedHeaders:TrustedProxies set, the client's address is taken from
/// X-Forwarded-For, but only when the connection comes from one of those proxies (one hop).
/// </summary>
public static class ProxyHeaders
{
    /// <summary>Reads the section, fails the start on an entry that is neither an address nor a network.</summary>
    public static ProxyOptions Read(IConfiguration configuration)
    {
        var options = configuration.GetSection("ForwardedHeaders").Get<ProxyOptions>() ?? new ProxyOptions();
        options.TrustedProxies = [.. options.TrustedProxies.Where(e => !string.IsNullOrWhiteSpace(e)).Select(e => e.Trim())];   // "" = none
        foreach (var entry in options.TrustedProxies)
            if (!IPAddress.TryParse(entry, out _) && !IPNetwork.TryParse(entry, out _))
                throw new InvalidOperationException(
                    $"ForwardedHeaders:TrustedProxies has '{entry}', which is neither an IP address nor a network such as 10.0.0.0/8.");
        return options;
    }

    /// <summary>Whether <paramref name="address"/> is one of the configured proxies or inside one of their networks.</summary>
    public static bool IsTrusted(ProxyOptions options, IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        foreach (var entry in options.TrustedProxies)
        {
            if (IPAddress.TryParse(entry, out var proxy) && (proxy.IsIPv4MappedToIPv6 ? proxy.MapToIPv4() : proxy).Equals(address)) return true;
            if (IPNetwork.TryParse(entry, out var network) && network.Contains(address)) return true;
        }
        return false;
    }

    public static void UseTrustedProxyHeaders(this WebApplication app, ProxyOptions options)
    {
        if (options.TrustedProxies.Length == 0) return;
        var forwarded = new ForwardedHeadersOptions
        {
            ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto,
            ForwardLimit = 1,
        };
        forwarded.KnownProxies.Clear();      // ASP.NET trusts loopback by default; only what is configured here
        forwarded.KnownIPNetworks.Clear();
        foreach (var entry in options.TrustedProxies)
        {
            if (IPAddress.TryParse(entry, out var address)) forwarded.KnownProxies.Add(address);
            else forwarded.KnownIPNetworks.Add(IPNetwork.Parse(entry));
        }
        app.UseForwardedHeaders(forwarded);
    }
}
