using System.Reflection;
using System.Reflection.Emit;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using AlexNet.Api.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Tests;

/// <summary>Security defaults (docs/security.md): the key guards every write and model management, in constant time;
/// no endpoint takes a path or URL; request and form limits are the chosen ones, not the framework's.</summary>
[Collection(ApiCollection.Name)]
public sealed partial class SecurityDefaultsTests(ModelFixture models) : IDisposable
{
    readonly TempDir _dir = new();

    ApiFactory Factory(IDictionary<string, string?>? settings = null) => new(models.ModelA, _dir.File("gallery.db"), settings);

    /// <summary>Every input the API takes, by name. A new one must be added here on purpose, after checking that it
    /// names no file, folder or URL for the server to read.</summary>
    static readonly HashSet<string> KnownInputs = ["id", "k", "tenCrop", "offset", "limit", "label", "note", Uploads.Field,
        Endpoints.GalleryEndpoints.MinSequenceHeader, "minSequence",   // a change sequence number (a shared gallery)
        // The Open Inference Protocol's: the served model's name and version (compared with the configured ones, never
        // opened), and its JSON request (tensors by name and their data, never a location); also a sample's name (GET
        // /api/samples/{name}), looked up in the list read at start, never part of a path.
        "name", "version", "parameters", "inputs", "outputs",
        // A served model's name (/api/classify?model=), looked up among the configured ones (ModelRegistry.Resolve), never opened.
        "model"];

    /// <summary>Routes whose body is JSON by their protocol (the Open Inference Protocol's inference request).</summary>
    static bool JsonByProtocol(string path) => path.StartsWith("/v2/", StringComparison.Ordinal) && path.EndsWith("/infer", StringComparison.Ordinal);

    [GeneratedRegex("path|url|uri|file|dir|folder|href|src|source|location|remote|fetch|download|model", RegexOptions.IgnoreCase)]
    private static partial Regex NamesALocation();

    [Fact]
    public async Task NoEndpointTakesAPathOrUrlParameter()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        using var doc = JsonDocument.Parse(await client.GetStringAsync("/swagger/v1/swagger.json"));

        var inputs = new List<string>();
        foreach (var path in doc.RootElement.GetProperty("paths").EnumerateObject())
            foreach (var operation in path.Value.EnumerateObject())
            {
                var where = $"{operation.Name.ToUpperInvariant()} {path.Name}";
                if (operation.Value.TryGetProperty("parameters", out var parameters))
                    foreach (var p in parameters.EnumerateArray())
                    {
                        var name = p.GetProperty("name").GetString()!;
                        inputs.Add($"{where}: {name}");
                        Assert.False(p.TryGetProperty("schema", out var s) && s.TryGetProperty("format", out var f) && f.GetString() is "uri" or "url",
                            $"{where}: {name} is a URL");
                    }
                if (operation.Value.TryGetProperty("requestBody", out var body))
                    foreach (var media in body.GetProperty("content").EnumerateObject())
                    {
                        Assert.False(media.Name.Contains("json", StringComparison.OrdinalIgnoreCase) && !JsonByProtocol(path.Name), $"{where} takes {media.Name}");
                        if (media.Value.TryGetProperty("schema", out var schema) && schema.TryGetProperty("properties", out var properties))
                            foreach (var property in properties.EnumerateObject()) inputs.Add($"{where}: {property.Name}");
                    }
            }

        Assert.NotEmpty(inputs);
        foreach (var input in inputs)
        {
            var name = input[(input.LastIndexOf(": ", StringComparison.Ordinal) + 2)..];
            Assert.True(KnownInputs.Contains(name), $"new input {input}: check it names no path or URL, then add it to KnownInputs");
            Assert.False(NamesALocation().IsMatch(name) && name != "model", $"{input} names a location");
        }
        Assert.Contains("POST /api/model/reload", string.Join("\n", doc.RootElement.GetProperty("paths").EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Select(o => $"{o.Name.ToUpperInvariant()} {p.Name}"))));

        // Beyond the document: every route the app maps, and every handler parameter that binds from the request.
        var endpoints = factory.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>().ToList();
        Assert.NotEmpty(endpoints);
        foreach (var endpoint in endpoints.Where(e => e.Metadata.GetMetadata<Grpc.AspNetCore.Server.GrpcMethodMetadata>() is null))   // protobuf messages only
        {
            foreach (var p in endpoint.RoutePattern.Parameters)
                Assert.True(p.Name == "id" || endpoint.RoutePattern.RawText!.StartsWith("/swagger", StringComparison.Ordinal)
                    || (p.Name is "name" or "version" && endpoint.RoutePattern.RawText!.StartsWith("/v2/models/", StringComparison.Ordinal))
                    || (p.Name is "name" && endpoint.RoutePattern.RawText == "/api/models/{name}/reload")
                    || (p.Name == "name" && endpoint.RoutePattern.RawText == "/api/samples/{name}"),
                    $"{endpoint.RoutePattern.RawText} binds '{p.Name}' from the route");
            if (endpoint.Metadata.GetMetadata<MethodInfo>() is not { } handler) continue;
            foreach (var p in handler.GetParameters())
            {
                var type = Nullable.GetUnderlyingType(p.ParameterType) ?? p.ParameterType;
                if (!(type.IsPrimitive || type == typeof(string) || type == typeof(Uri))) continue;   // services, HttpContext, tokens
                Assert.True(KnownInputs.Contains(p.Name!), $"{handler.DeclaringType?.Name}.{handler.Name} binds '{p.Name}' ({type.Name})");
                Assert.NotEqual(typeof(Uri), type);
            }
        }
    }

    [Fact]
    public async Task WritesAndModelManagementNeedTheApiKey()
    {
        await using var factory = Factory();
        var client = await factory.ReadyClientAsync();
        using var doc = JsonDocument.Parse(await client.GetStringAsync("/swagger/v1/swagger.json"));
        var guarded = doc.RootElement.GetProperty("paths").EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject().Select(o => (Op: $"{o.Name.ToUpperInvariant()} {p.Name}", Key: o.Value.TryGetProperty("security", out _))))
            .ToList();

        // Writes need the key; the other POSTs compute an answer from the upload and store nothing.
        string[] readOnlyPosts = ["POST /api/classify", "POST /api/features", "POST /api/gallery/search",
            "POST /v2/models/{name}/infer", "POST /v2/models/{name}/versions/{version}/infer"];
        foreach (var (op, key) in guarded.Where(g => !g.Op.StartsWith("GET ", StringComparison.Ordinal)))
            Assert.True(key || readOnlyPosts.Contains(op), $"{op} changes state but does not require the API key");
        Assert.All(new[] { "POST /api/gallery", "DELETE /api/gallery/{id}", "POST /api/model/reload" }, op => Assert.Contains((op, true), guarded));

        foreach (var (method, url) in new[] { (HttpMethod.Post, "/api/gallery"), (HttpMethod.Delete, "/api/gallery/1"), (HttpMethod.Post, "/api/model/reload") })
            foreach (var key in new string?[] { null, "", "test-ke", "test-key ", "TEST-KEY", "test-key-and-more", new string('x', 10_000) })
            {
                using var request = new HttpRequestMessage(method, url) { Content = Http.Raw(TestImages.Png(1)) };
                if (key is not null) request.Headers.TryAddWithoutValidation(ApiKeyFilter.Header, key);
                using var response = await client.SendAsync(request);
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{method} {url} with key '{key?[..Math.Min(key.Length, 20)]}': {(int)response.StatusCode}");
                Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            }

        await using var keyless = new ApiFactory(models.ModelA, _dir.File("keyless.db"), new Dictionary<string, string?> { ["Security:ApiKey"] = "" });
        var open = await keyless.ReadyClientAsync();
        using var reload = await open.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/model/reload").WithKey(""));
        Assert.Equal(HttpStatusCode.Forbidden, reload.StatusCode);   // no key configured: writes are off, not open
    }

    /// <summary>The filter must compare with <see cref="CryptographicOperations.FixedTimeEquals"/> over equal-length
    /// hashes, never with a string or sequence comparison that stops at the first difference. Read from its IL.</summary>
    [Fact]
    public void ApiKeyIsComparedInConstantTime()
    {
        var method = typeof(ApiKeyFilter).GetMethod(nameof(ApiKeyFilter.InvokeAsync))!;
        var calls = CalledMethods(method).Select(m => $"{m.DeclaringType?.FullName}.{m.Name}").ToList();

        Assert.Contains("System.Security.Cryptography.CryptographicOperations.FixedTimeEquals", calls);
        Assert.Contains("System.Security.Cryptography.SHA256.HashData", calls);
        Assert.DoesNotContain(calls, c => c.StartsWith("System.String.Equals", StringComparison.Ordinal) || c.EndsWith("op_Equality", StringComparison.Ordinal)
            || c.Contains("SequenceEqual", StringComparison.Ordinal) || c.Contains("CompareOrdinal", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RequestAndFormLimitsAreTheChosenOnesNotTheFrameworks()
    {
        await using var factory = Factory();
        factory.UseKestrel(0);
        factory.StartServer();
        var kestrel = factory.Services.GetRequiredService<IOptions<KestrelServerOptions>>().Value;
        var form = factory.Services.GetRequiredService<IOptions<FormOptions>>().Value;
        var uploads = factory.Services.GetRequiredService<IOptions<UploadOptions>>().Value;
        var rate = new RateLimitOptions();   // the factory raises the limit for tests; the shipped default is the class's

        Assert.Equal(32L << 20, uploads.MaxRequestBytes);
        Assert.Equal(uploads.MaxRequestBytes, kestrel.Limits.MaxRequestBodySize);   // Kestrel's own default: 30,000,000
        Assert.Equal(32 * 1024, kestrel.Limits.MaxRequestHeadersTotalSize);          // default 32 KB, set explicitly
        Assert.False(kestrel.AddServerHeader);
        Assert.Equal(uploads.MaxRequestBytes, form.MultipartBodyLengthLimit);         // default 128 MB
        Assert.Equal(uploads.MaxRequestBytes, form.BufferBodyLengthLimit);
        Assert.Equal(3 * 16 + 8, form.ValueCountLimit);                               // default 1024
        Assert.Equal(4 * 2000 + 1024, form.ValueLengthLimit);                         // default 4 MB
        Assert.Equal(256, form.KeyLengthLimit);                                       // default 2048
        Assert.Equal(8, form.MultipartHeadersCountLimit);                             // default 16
        Assert.Equal(8 * 1024, form.MultipartHeadersLengthLimit);                     // default 16 KB
        Assert.Equal(1 << 20, uploads.MemoryBufferBytes);
        Assert.Equal(uploads.MemoryBufferBytes, form.MemoryBufferThreshold);          // default 64 KB
        Assert.Equal((8L << 20, 16, 8192, 40_000_000L, 50, 100), (uploads.MaxImageBytes, uploads.MaxImagesPerRequest, uploads.MaxSide,
            uploads.MaxPixels, uploads.MaxAspectRatio, uploads.MaxK));
        Assert.Equal((300, 60), (rate.PermitLimit, rate.WindowSeconds));

        // The header limit on the real listener: 40 KB of headers is a 431, and the next connection works.
        var server = factory.CreateClient().BaseAddress!;
        var big = await RawHttp.SendAsync(server, "GET", "/health/live", [$"X-Padding: {new string('a', 40 * 1024)}"]);
        Assert.Equal(431, big.Status);
        var ok = await RawHttp.SendAsync(server, "GET", "/health/live", ["Origin: https://evil.example"]);
        Assert.Equal(200, ok.Status);
        Assert.False(ok.Headers.ContainsKey("Server"));
        Assert.False(ok.Headers.ContainsKey("Access-Control-Allow-Origin"), "no CORS: browsers on other origins get no answers");
    }

    /// <summary>Methods called (call, callvirt, newobj) in <paramref name="method"/> and the compiler-made state
    /// machines and lambdas of its type.</summary>
    static IEnumerable<MethodBase> CalledMethods(MethodInfo method)
    {
        var bodies = new List<MethodBase> { method };
        bodies.AddRange(method.DeclaringType!.GetNestedTypes(BindingFlags.NonPublic)
            .SelectMany(t => t.GetMethods(BindingFlags.Instance | BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly)));
        var oneByte = typeof(OpCodes).GetFields().Select(f => (OpCode)f.GetValue(null)!).Where(o => o.Size == 1).ToDictionary(o => o.Value);
        var twoByte = typeof(OpCodes).GetFields().Select(f => (OpCode)f.GetValue(null)!).Where(o => o.Size == 2).ToDictionary(o => (byte)(o.Value & 0xFF));
        foreach (var body in bodies)
        {
            var il = body.GetMethodBody()?.GetILAsByteArray() ?? [];
            for (var at = 0; at < il.Length;)
            {
                var op = il[at] == 0xFE ? twoByte[il[++at]] : oneByte[il[at]];
                at++;
                if (op.OperandType == OperandType.InlineMethod)
                {
                    var token = BitConverter.ToInt32(il, at);
                    MethodBase? called = null;
                    try { called = body.Module.ResolveMethod(token, body.DeclaringType?.GetGenericArguments(), null); }
                    catch (ArgumentException) { }
                    if (called is not null) yield return called;
                }
                at += op.OperandType switch
                {
                    OperandType.InlineNone => 0,
                    OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                    OperandType.InlineVar => 2,
                    OperandType.InlineI8 or OperandType.InlineR => 8,
                    OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, at),
                    _ => 4,
                };
            }
        }
    }

    public void Dispose() => _dir.Dispose();
}
