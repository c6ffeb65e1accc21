using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using AlexNet.Api.Endpoints;
using AlexNet.Training.Prediction;

namespace AlexNet.Training.Tests;

/// <summary>
/// alexnet-train predict (issue 18, item 5) over a small generated folder gives, per image, the labels and
/// probabilities /api/classify gives for the same file and model (central crop and 10 crops), skips and names an
/// unreadable file, and reports top-1/top-5 accuracy over the images in folders named by a class.
/// </summary>
public sealed class PredictTests : IDisposable
{
    /// <summary>Absolute, on probabilities: the CSV writes 9 significant digits (round-trip for float).</summary>
    const double Tolerance = 1e-6;

    readonly TempDir _dir = new();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PredictMatchesClassifyPerImage(bool tenCrop)
    {
        var model = _dir.File("model.onnx");
        TestModel.Write(model, seed: 4);
        var data = _dir.File("data");
        var files = new Dictionary<string, byte[]>
        {
            ["Bag/one.png"] = TestImages.Png(1, 90, 72),
            ["Bag/two.jpg"] = TestImages.Jpeg(2),
            ["Trouser/three.png"] = TestImages.Png(3, 41, 67),
            ["Trouser/four.webp"] = TestImages.Webp(4),
            ["unsorted/five, with a comma.gif"] = TestImages.Gif(5),
        };
        foreach (var (path, bytes) in files)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(data, path))!);
            await File.WriteAllBytesAsync(Path.Combine(data, path), bytes);
        }
        await File.WriteAllTextAsync(Path.Combine(data, "Bag", "broken.jpg"), "not an image");
        var csv = _dir.File("predictions.csv");

        var lines = new List<string>();
        var summary = FolderPrediction.Run(new PredictRequest(model, null, data, csv, Top: 5, TenCrop: tenCrop), lines.Add);

        Assert.Equal(files.Count, summary.Predicted);
        Assert.Equal("Bag/broken.jpg", Assert.Single(summary.Skipped).Path);
        Assert.Contains(lines, l => l.StartsWith("skipped Bag/broken.jpg: ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains("img/s") && l.Contains("ETA"));

        var rows = ReadCsv(csv);
        Assert.Equal(["path", "label_1", "probability_1", "label_2", "probability_2", "label_3", "probability_3", "label_4", "probability_4",
            "label_5", "probability_5"], rows[0]);
        Assert.Equal(files.Keys.Order(StringComparer.Ordinal), rows.Skip(1).Select(r => r[0]));

        await using var service = new ApiFactory(model, _dir.File("gallery.db"), new Dictionary<string, string?> { ["Cache:Enabled"] = "false" });
        var client = service.CreateClient();
        for (var i = 0; i < 100 && !(await client.GetAsync("/health/ready")).IsSuccessStatusCode; i++) await Task.Delay(100);
        int labelled = 0, top1 = 0, top5 = 0;
        foreach (var row in rows.Skip(1))
        {
            using var content = new ByteArrayContent(files[row[0]]);
            content.Headers.ContentType = new("application/octet-stream");
            using var form = new MultipartFormDataContent { { content, "image", "upload" } };
            using var response = await client.PostAsync($"/api/classify?k=5&tenCrop={tenCrop}", form);
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
            var top = (await response.Content.ReadFromJsonAsync<ClassifyResponse>())!.Results[0].Top;
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(top[i].Label, row[1 + 2 * i]);
                var p = double.Parse(row[2 + 2 * i], CultureInfo.InvariantCulture);
                Assert.True(Math.Abs(p - top[i].Probability) <= Tolerance, $"{row[0]} #{i + 1}: {p} in the CSV, {top[i].Probability} from /api/classify");
            }
            var folder = row[0][..row[0].IndexOf('/')];
            if (folder is "Bag" or "Trouser")
            {
                labelled++;
                if (top[0].Label == folder) top1++;
                if (top.Any(c => c.Label == folder)) top5++;
            }
        }
        Assert.Equal(4, summary.Labelled);
        Assert.Equal(labelled, summary.Labelled);
        Assert.Equal((double)top1 / labelled, summary.Top1);
        Assert.Equal((double)top5 / labelled, summary.Top5);
    }

    [Fact]
    public void PredictCommandPrintsTheSummaryAndRefusesToReplaceItsOutputWithoutForce()
    {
        var model = _dir.File("model.onnx");
        TestModel.Write(model, seed: 4);
        var data = _dir.File("data");
        Directory.CreateDirectory(data);
        File.WriteAllBytes(Path.Combine(data, "a.png"), TestImages.Png(1));
        var csv = _dir.File("out.csv");
        File.WriteAllText(csv, "keep me");

        var (code, stdout, stderr) = CliTests.Run("predict", "--model", model, "--data", data, "--out", csv);
        Assert.Equal(2, code);
        Assert.Contains("--force", stderr);
        Assert.Equal("keep me", File.ReadAllText(csv));
        (code, stdout, stderr) = CliTests.Run("predict", "--model", model, "--data", data, "--out", csv, "--force", "--top", "3");
        Assert.True(code == 0, stderr);
        Assert.Contains("1 images predicted, 0 skipped", stdout);
        Assert.StartsWith("path,label_1,probability_1,label_2,probability_2,label_3,probability_3\na.png,", File.ReadAllText(csv).ReplaceLineEndings("\n"));
    }

    /// <summary>RFC 4180 fields: quoted ones may hold commas and doubled quotes.</summary>
    static List<string[]> ReadCsv(string path)
    {
        var rows = new List<string[]>();
        foreach (var line in File.ReadAllLines(path))
        {
            var fields = new List<string>();
            var field = new StringBuilder();
            var quoted = false;
            for (var i = 0; i < line.Length; i++)
            {
                var c = line[i];
                if (quoted && c == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = !quoted;
                else if (c == ',' && !quoted) { fields.Add(field.ToString()); field.Clear(); }
                else field.Append(c);
            }
            fields.Add(field.ToString());
            rows.Add([.. fields]);
        }
        return rows;
    }

    public void Dispose() => _dir.Dispose();
}
