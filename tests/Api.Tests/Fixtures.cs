using System.Net.Http.Headers;

namespace AlexNet.Api.Tests;

/// <summary>Two real compact-preset models (<see cref="TestModel"/>, seeds 1 and 2), shared by the tests of a collection.</summary>
public sealed class ModelFixture : IDisposable
{
    readonly TempDir _dir = new();

    public ModelFixture()
    {
        ModelA = _dir.File("model-a.onnx");
        ModelB = _dir.File("model-b.onnx");
        TestModel.Write(ModelA, seed: 1);
        TestModel.Write(ModelB, seed: 2);
    }

    public string ModelA { get; }
    public string ModelB { get; }

    public void Dispose() => _dir.Dispose();
}

[CollectionDefinition(Name)]
public sealed class ApiCollection : ICollectionFixture<ModelFixture>
{
    public const string Name = "api";
}

public static class Http
{
    public static ByteArrayContent Raw(byte[] bytes, string type = "image/png")
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(type);
        return content;
    }

    /// <summary>A multipart form with one file field named "image" per image, and optional label fields.</summary>
    public static MultipartFormDataContent Form(IEnumerable<byte[]> images, IEnumerable<string>? labels = null, string field = "image")
    {
        var form = new MultipartFormDataContent();
        var i = 0;
        foreach (var bytes in images)
        {
            var part = new ByteArrayContent(bytes);
            part.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            form.Add(part, field, $"upload-{i++}.png");
        }
        foreach (var label in labels ?? []) form.Add(new StringContent(label), "label");
        return form;
    }

    public static MultipartFormDataContent Form(params byte[][] images) => Form((IEnumerable<byte[]>)images);

    public static async Task<T> JsonAsync<T>(this HttpResponseMessage response)
    {
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<T>())!;
    }

    public static HttpRequestMessage WithKey(this HttpRequestMessage request, string? key = ApiFactory.Key)
    {
        if (key is not null) request.Headers.Add("X-Api-Key", key);
        return request;
    }

    /// <summary>The summed value of a Prometheus sample line (name and labels as written), or 0 when absent.</summary>
    public static async Task<double> MetricAsync(HttpClient client, string sample)
    {
        var text = await client.GetStringAsync("/metrics");
        return text.Split('\n').Where(l => l.StartsWith(sample + " ", StringComparison.Ordinal))
            .Select(l => double.Parse(l[(sample.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture)).Sum();
    }
}
