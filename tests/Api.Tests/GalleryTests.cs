namespace AlexNet.Api.Tests;

[Collection(ApiCollection.Name)]
public sealed class GalleryTests(ModelFixture models) : IDisposable
{
    // FC7 vectors of one image through one model: equal up to float32 noise, far below the gaps between images.
    const float SameImageDistance = 1e-3f;

    readonly TempDir _dir = new();
    string Database => _dir.File("gallery.db");

    static async Task<GalleryItem[]> AddAsync(HttpClient client, byte[][] images, string[]? labels = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/gallery") { Content = Http.Form(images, labels) }.WithKey();
        using var response = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var added = await response.JsonAsync<GalleryAddResponse>();
        Assert.Equal($"/api/gallery/{added.Items[0].Id}", response.Headers.Location?.OriginalString);
        return added.Items;
    }

    static async Task<SearchHit[]> SearchAsync(HttpClient client, byte[] image, int k = 5) =>
        (await (await client.PostAsync($"/api/gallery/search?k={k}", Http.Raw(image))).JsonAsync<SearchResponse>()).Results.Single().Neighbours;

    [Fact]
    public async Task AddedImageIsFoundFirstAtDistanceZero()
    {
        await using var factory = new ApiFactory(models.ModelA, Database);
        var client = await factory.ReadyClientAsync();
        byte[][] images = [TestImages.Png(1), TestImages.Jpeg(2), TestImages.Png(3)];

        var added = await AddAsync(client, images, ["shirt", "boot", "bag"]);
        var hits = await SearchAsync(client, images[1]);

        Assert.Equal(["shirt", "boot", "bag"], added.Select(a => a.Label));
        Assert.Equal(3, hits.Length);
        Assert.Equal(added[1].Id, hits[0].Id);
        Assert.Equal("boot", hits[0].Label);
        Assert.InRange(hits[0].Distance, 0f, SameImageDistance);
        Assert.True(hits[1].Distance > 100 * SameImageDistance, $"another image at {hits[1].Distance}");
        Assert.Equal(hits.Select(h => h.Distance).Order(), hits.Select(h => h.Distance));
        Assert.Equal(3, (await (await client.GetAsync("/api/gallery")).JsonAsync<GalleryListResponse>()).Total);

        using var thumbnail = await client.GetAsync(hits[0].ThumbnailUrl);
        Assert.Equal("image/png", thumbnail.Content.Headers.ContentType?.MediaType);
        var info = Image.Identify(await thumbnail.Content.ReadAsByteArrayAsync());
        Assert.True(info.Width is > 0 and <= 96 && info.Width == info.Height, $"{info.Width}x{info.Height}");
    }

    [Fact]
    public async Task SimilarByIdLeavesTheImageItselfOutAndSorts()
    {
        await using var factory = new ApiFactory(models.ModelA, Database);
        var client = await factory.ReadyClientAsync();
        var added = await AddAsync(client, [.. Enumerable.Range(10, 5).Select(s => TestImages.Png(s))]);

        var similar = await (await client.GetAsync($"/api/gallery/{added[2].Id}/similar?k=3")).JsonAsync<SimilarResponse>();

        Assert.Equal(3, similar.Neighbours.Length);
        Assert.DoesNotContain(similar.Neighbours, n => n.Id == added[2].Id);
        Assert.Equal(similar.Neighbours.Select(h => h.Distance).Order(), similar.Neighbours.Select(h => h.Distance));
        var fromUpload = await SearchAsync(client, TestImages.Png(12), k: 4);
        Assert.Equal(fromUpload.Skip(1).Select(h => h.Id), similar.Neighbours.Select(h => h.Id));
    }

    /// <summary>With Gallery:SearchAloneBelowMiB=0 every search goes through the coalescer's shared passes, as a large
    /// gallery's do (a test gallery is far under the 24 MiB default, so otherwise each is searched at once): concurrent
    /// similar-searches, some sharing a pass (a 5 ms delay gathers them), answer exactly what a search at once does.</summary>
    [Fact]
    public async Task ConcurrentSearchesInSharedPassesAnswerAsSearchesAtOnce()
    {
        byte[][] images = [.. Enumerable.Range(30, 12).Select(s => TestImages.Png(s))];
        long[] ids;
        var atOnce = new List<SearchHit[]>();
        await using (var factory = new ApiFactory(models.ModelA, Database))
        {
            var client = await factory.ReadyClientAsync();
            ids = [.. (await AddAsync(client, images)).Select(a => a.Id)];
            foreach (var id in ids)
                atOnce.Add((await (await client.GetAsync($"/api/gallery/{id}/similar?k=5")).JsonAsync<SimilarResponse>()).Neighbours);
        }
        await using var passes = new ApiFactory(models.ModelA, Database,
            new Dictionary<string, string?> { ["Gallery:SearchAloneBelowMiB"] = "0", ["Gallery:SearchBatchDelayMs"] = "5" });
        var shared = await passes.ReadyClientAsync();
        for (var round = 0; round < 2; round++)
        {
            var together = await Task.WhenAll(ids.Select(async id =>
                (await (await shared.GetAsync($"/api/gallery/{id}/similar?k=5")).JsonAsync<SimilarResponse>()).Neighbours));
            for (var i = 0; i < ids.Length; i++)
            {
                Assert.Equal(atOnce[i].Select(h => h.Id), together[i].Select(h => h.Id));
                Assert.Equal(atOnce[i].Select(h => BitConverter.SingleToInt32Bits(h.Distance)), together[i].Select(h => BitConverter.SingleToInt32Bits(h.Distance)));
                Assert.DoesNotContain(together[i], h => h.Id == ids[i]);
            }
        }
    }

    [Fact]
    public async Task DeletedImageLeavesSearchAndList()
    {
        await using var factory = new ApiFactory(models.ModelA, Database);
        var client = await factory.ReadyClientAsync();
        var added = await AddAsync(client, [TestImages.Png(20), TestImages.Png(21)]);

        using (var delete = await client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/api/gallery/{added[0].Id}").WithKey()))
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);

        var hits = await SearchAsync(client, TestImages.Png(20));
        Assert.Equal([added[1].Id], hits.Select(h => h.Id));
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/api/gallery/{added[0].Id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/api/gallery/{added[0].Id}/thumbnail")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync($"/api/gallery/{added[0].Id}/similar")).StatusCode);
        using var again = await client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/api/gallery/{added[0].Id}").WithKey());
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
    }

    [Fact]
    public async Task AFullGalleryRefusesAddsWith409AndKeepsWhatItHolds()
    {
        await using var factory = new ApiFactory(models.ModelA, Database, new Dictionary<string, string?> { ["Gallery:MaxImages"] = "3" });
        var client = await factory.ReadyClientAsync();
        var added = await AddAsync(client, [TestImages.Png(40), TestImages.Png(41)]);

        // Two more would make four: refused whole, not half-added.
        using (var over = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "/api/gallery")
                   { Content = Http.Form(TestImages.Png(42), TestImages.Png(43)) }.WithKey()))
        {
            Assert.Equal(HttpStatusCode.Conflict, over.StatusCode);
            Assert.Equal("application/problem+json", over.Content.Headers.ContentType?.MediaType);
            Assert.Contains("Gallery:MaxImages", await over.Content.ReadAsStringAsync());
        }
        Assert.Equal(2, (await (await client.GetAsync("/api/gallery")).JsonAsync<GalleryListResponse>()).Total);

        await AddAsync(client, [TestImages.Png(42)]);   // the third fits
        using (var delete = await client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/api/gallery/{added[0].Id}").WithKey()))
            Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        await AddAsync(client, [TestImages.Png(43)]);   // room again after a delete
        Assert.Equal(3, (await (await client.GetAsync("/api/gallery")).JsonAsync<GalleryListResponse>()).Total);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/ready")).StatusCode);
    }

    [Fact]
    public async Task RestartKeepsTheGallery()
    {
        GalleryItem[] added;
        SearchHit[] before;
        await using (var first = new ApiFactory(models.ModelA, Database))
        {
            var client = await first.ReadyClientAsync();
            added = await AddAsync(client, [TestImages.Png(30), TestImages.Png(31), TestImages.Png(32)], ["a", "b", "c"]);
            using var delete = await client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, $"/api/gallery/{added[2].Id}").WithKey());
            before = await SearchAsync(client, TestImages.Png(31));
        }

        await using var second = new ApiFactory(models.ModelA, Database);
        var again = await second.ReadyClientAsync();
        var list = await (await again.GetAsync("/api/gallery")).JsonAsync<GalleryListResponse>();
        var after = await SearchAsync(again, TestImages.Png(31));

        Assert.Equal(added.Take(2), list.Items);
        Assert.Equal(before, after);
        Assert.Equal(added[1].Id, after[0].Id);
        var next = await AddAsync(again, [TestImages.Png(33)]);
        Assert.True(next[0].Id > added[2].Id, "ids are never reused");
    }

    [Fact]
    public async Task NewModelReembedsTheGalleryFromItsStoredCopies()
    {
        byte[][] images = [TestImages.Png(40), TestImages.Png(41), TestImages.Png(42)];
        GalleryItem[] added;
        await using (var withA = new ApiFactory(models.ModelA, Database))
            added = await AddAsync(await withA.ReadyClientAsync(), images);

        await using var withB = new ApiFactory(models.ModelB, Database);
        var client = await withB.ReadyClientAsync();
        var hits = await SearchAsync(client, images[2]);
        var features = await (await client.PostAsync("/api/features", Http.Raw(images[2]))).JsonAsync<FeaturesResponse>();

        // Model B's query finds the image at distance 0 only if the stored vector is B's too.
        Assert.Equal(added[2].Id, hits[0].Id);
        Assert.InRange(hits[0].Distance, 0f, SameImageDistance);
        using var reference = new Reference(models.ModelA);
        var (_, featuresA) = reference.Run(reference.Prepare(images[2]), reference.Center);
        Assert.True(AlexNet.Model.Maths.Euclidean(featuresA, features.Results[0].Features) > 1000 * SameImageDistance,
            "the two models must disagree, or this test proves nothing");
        var model = await (await client.GetAsync("/api/model")).JsonAsync<ModelResponse>();
        Assert.Equal(Inference.OnnxClassifier.Fingerprint(models.ModelB), model.Fingerprint);
        Assert.NotEqual(Inference.OnnxClassifier.Fingerprint(models.ModelA), model.Fingerprint);
    }

    [Fact]
    public async Task RawUploadTakesLabelAndNoteFromTheQuery()
    {
        await using var factory = new ApiFactory(models.ModelA, Database);
        var client = await factory.ReadyClientAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/gallery?label=sneaker&note=left%20shoe") { Content = Http.Raw(TestImages.Webp(50), "image/webp") }.WithKey();
        using var response = await client.SendAsync(request);

        var item = (await response.JsonAsync<GalleryAddResponse>()).Items.Single();
        var fetched = await (await client.GetAsync($"/api/gallery/{item.Id}")).JsonAsync<GalleryItem>();
        Assert.Equal(("sneaker", "left shoe"), (fetched.Label, fetched.Note));
        Assert.Equal((90, 72), (fetched.Width, fetched.Height));
        Assert.Equal(item, fetched);
    }

    [Fact]
    public async Task ListPagesOldestFirst()
    {
        await using var factory = new ApiFactory(models.ModelA, Database);
        var client = await factory.ReadyClientAsync();
        var added = await AddAsync(client, [.. Enumerable.Range(60, 5).Select(s => TestImages.Png(s))]);

        var page = await (await client.GetAsync("/api/gallery?offset=1&limit=2")).JsonAsync<GalleryListResponse>();

        Assert.Equal(5, page.Total);
        Assert.Equal(added.Skip(1).Take(2).Select(a => a.Id), page.Items.Select(i => i.Id));
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/api/gallery?limit=0")).StatusCode);
    }

    public void Dispose() => _dir.Dispose();
}
