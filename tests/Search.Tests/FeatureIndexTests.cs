using AlexNet.Model;

namespace AlexNet.Search.Tests;

public sealed class FeatureIndexTests
{
    static float[] Vector(Random rng, int dim) => [.. Enumerable.Range(0, dim).Select(_ => (float)rng.NextDouble())];

    [Fact]
    public void SearchMatchesBruteForceAfterAddsAndRemoves()
    {
        var rng = new Random(7);
        const int dim = 37;   // not a multiple of any SIMD width
        var index = new FeatureIndex(dim);
        var all = new Dictionary<long, float[]>();
        for (long id = 1; id <= 300; id++) index.Add(id, all[id] = Vector(rng, dim));   // grows past the initial 64 rows
        foreach (var id in new long[] { 1, 150, 300, 77 })
        {
            Assert.True(index.Remove(id));
            all.Remove(id);
        }
        Assert.False(index.Remove(150));

        var query = Vector(rng, dim);
        var hits = index.Search(query, 10);
        var expected = all.OrderBy(p => Maths.Euclidean(p.Value, query)).ThenBy(p => p.Key).Take(10).ToArray();

        Assert.Equal(296, index.Count);
        Assert.Equal(expected.Select(e => e.Key), hits.Select(h => h.Id));
        for (var i = 0; i < hits.Length; i++) Assert.Equal(Maths.Euclidean(expected[i].Value, query), hits[i].Distance, 1e-5f);
        Assert.Equal(all[200], index.Get(200));
        Assert.Null(index.Get(150));
    }

    [Fact]
    public void SearchCanLeaveOutTheQueryItself()
    {
        var rng = new Random(8);
        var index = new FeatureIndex(4);
        for (long id = 1; id <= 5; id++) index.Add(id, Vector(rng, 4));
        var self = index.Get(3)!;

        Assert.Equal(3, index.Search(self, 1)[0].Id);
        Assert.Equal(0f, index.Search(self, 1)[0].Distance);
        var others = index.Search(self, 10, exclude: 3);
        Assert.Equal(4, others.Length);
        Assert.DoesNotContain(others, h => h.Id == 3);
    }

    [Fact]
    public void WrongDimensionOrDuplicateIdIsRefused()
    {
        var index = new FeatureIndex(3);
        index.Add(1, [1, 2, 3]);
        Assert.Throws<ArgumentException>(() => index.Add(2, [1, 2]));
        Assert.Throws<ArgumentException>(() => index.Add(1, [1, 2, 3]));
        Assert.Throws<ArgumentException>(() => index.Search([1, 2], 1));
        Assert.Empty(new FeatureIndex(3).Search([1, 2, 3], 5));
    }
}
