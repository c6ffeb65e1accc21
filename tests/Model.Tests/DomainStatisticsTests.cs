using AlexNet.Model.OutOfDomain;

namespace AlexNet.Model.Tests;

/// <summary>The out-of-domain statistics on generated rows: what they learn, how they are stored, what they flag.</summary>
public sealed class DomainStatisticsTests
{
    // A small layout like the real one: a low-rank group, a constant group (grey images' colour), a diagonal group.
    static readonly StatisticGroup[] Groups = [new("maps", 12), new("colour", 3), new("wide", DomainStatistics.LowRankMaxColumns + 8)];
    static int Dim => Groups.Sum(g => g.Length);

    /// <summary>Rows with correlated columns (three hidden factors) in "maps" and "wide", and zeros in "colour".</summary>
    static float[] Rows(int n, int seed, float shift = 0)
    {
        var rng = new Random(seed);
        var rows = new float[n * Dim];
        for (var i = 0; i < n; i++)
        {
            var f = new[] { Gauss(rng), Gauss(rng), Gauss(rng) };
            var row = rows.AsSpan(i * Dim, Dim);
            for (var d = 0; d < 12; d++) row[d] = 2 + f[d % 3] + 0.1f * Gauss(rng) + shift;
            for (var d = 15; d < Dim; d++) row[d] = 1 + 0.5f * f[d % 3] + 0.2f * Gauss(rng) + shift;
        }
        return rows;
    }

    static float Gauss(Random rng) => (float)(Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble()));

    static DomainStatistics Fit(int seed = 1) => DomainStatistics.Fit(Groups, Rows(600, seed), Rows(400, seed + 1), data: "generated");

    static float[] Scores(DomainStatistics s, float[] rows) =>
        [.. Enumerable.Range(0, rows.Length / Dim).Select(i => s.Score(rows.AsSpan(i * Dim, Dim)))];

    [Fact]
    public void StatisticsRoundTripThroughTheMetadataJson()
    {
        var stats = Fit();
        var back = DomainStatistics.FromJson(stats.ToJson());

        Assert.Equal(stats.ToJson(), back.ToJson());
        Assert.Equal(Groups.Select(g => (g.Name, g.Length)), back.Groups.Select(g => (g.Name, g.Length)));
        Assert.True(back.Groups[0].LowRank && back.Groups[1].LowRank && !back.Groups[2].LowRank);
        Assert.Equal(stats.Threshold, back.Threshold);
        Assert.Equal((600, 400, "generated", DomainStatistics.DefaultPercentile), (back.FitImages, back.CalibrationImages, back.Data, back.Percentile));
        var rows = Rows(50, 9);
        Assert.Equal(Scores(stats, rows), Scores(back, rows));
    }

    [Fact]
    public void FittingTheSameRowsTwiceGivesTheSameStatistics()
    {
        Assert.Equal(Fit(seed: 3).ToJson(), Fit(seed: 3).ToJson());
        Assert.NotEqual(Fit(seed: 3).ToJson(), Fit(seed: 4).ToJson());   // and the rows do matter
    }

    [Fact]
    public void NewInDomainRowsPassAtAboutThePercentileAndShiftedRowsAreFlagged()
    {
        var stats = Fit();
        var typical = Scores(stats, Rows(2000, 7));
        var flagged = typical.Count(s => s > 1) / (double)typical.Length;
        // The threshold is the 97.5th percentile of the calibration rows: new rows of the same kind cross it about 2.5% of the time.
        Assert.InRange(flagged, 0.005, 0.06);
        Assert.All(Scores(stats, Rows(20, 8, shift: 3)), s => Assert.True(s > 1, $"a shifted row scored {s}"));
    }

    [Fact]
    public void AColumnThatNeverVariedFlagsAnyChangeWithoutDividingByZero()
    {
        var stats = Fit();
        var row = Rows(1, 11);
        var before = stats.Score(row);
        row[12] = 1e-3f;   // "colour" was 0 in every training row

        var after = stats.Score(row, out var group);

        Assert.True(float.IsFinite(after));
        Assert.True(after > 1 && after > 100 * before, $"score {before} -> {after}");
        Assert.Equal("colour", group);
    }

    [Fact]
    public void JacobiGivesEigenpairsInDescendingOrder()
    {
        var rng = new Random(5);
        const int n = 20;
        var a = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j <= i; j++) a[i, j] = a[j, i] = rng.NextDouble() - 0.5;

        var (values, vectors) = SymmetricEigen.Decompose(a);

        Assert.Equal(values.OrderDescending(), values);
        for (var k = 0; k < n; k++)
            for (var i = 0; i < n; i++)
            {
                double av = 0;
                for (var j = 0; j < n; j++) av += a[i, j] * vectors[j, k];
                Assert.Equal(values[k] * vectors[i, k], av, 1e-9);
            }
    }

    [Fact]
    public void SubspaceIterationFindsTheLargestEigenpairs()
    {
        // A covariance with a known spectrum: eigenvalues 40, 39, ..., 1 along a random orthonormal basis.
        const int n = 40, k = 6;
        var rng = new Random(6);
        var basis = new double[n, n];
        for (var i = 0; i < n; i++)
            for (var j = 0; j <= i; j++) basis[i, j] = basis[j, i] = rng.NextDouble() - 0.5;
        var (_, u) = SymmetricEigen.Decompose(basis);
        var a = new double[n * n];
        for (var r = 0; r < n; r++)
            for (var c = 0; c < n; c++)
                for (var e = 0; e < n; e++) a[r * n + c] += u[r, e] * (n - e) * u[c, e];

        var (values, vectors) = SymmetricEigen.Top(a, n, k);

        Assert.Equal(Enumerable.Range(0, k).Select(e => (double)(n - e)), values.Select(v => Math.Round(v, 6)));
        for (var e = 0; e < k; e++)
        {
            var dot = Enumerable.Range(0, n).Sum(t => vectors[e * n + t] * u[t, e]);
            Assert.Equal(1, Math.Abs(dot), 1e-6);   // the same direction, up to sign
        }
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("""{"version":1,"groups":[],"threshold":1}""")]
    [InlineData("""{"version":2,"groups":[{"name":"g","length":1,"mean":"AAAAAA==","std":"AACAPw==","scale":1}],"threshold":1}""")]
    [InlineData("""{"version":1,"groups":[{"name":"g","length":2,"mean":"AAAAAA==","std":"AACAPwAAgD8=","scale":1}],"threshold":1}""")]
    [InlineData("""{"version":1,"groups":[{"name":"g","length":1,"mean":"AAAAAA==","std":"AAAAAA==","scale":1}],"threshold":1}""")]
    [InlineData("""{"version":1,"groups":[{"name":"g","length":1,"mean":"AAAAAA==","std":"AACAPw==","scale":1}],"threshold":0}""")]
    public void BrokenStatisticsAreRefusedNamingTheKey(string json)
    {
        var e = Assert.Throws<InvalidDataException>(() => DomainStatistics.FromJson(json));
        Assert.Contains(DomainStatistics.MetadataKey, e.Message);
    }
}
