using AlexNet.Training.Loop;
using AlexNet.Training.Networks;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using static TorchSharp.torch;

namespace AlexNet.Training.Reporting;

/// <summary>The pictures people look at: loss and error curves, and the conv1 kernels (the paper's Figure 3).</summary>
public static class Pictures
{
    /// <summary>curves.png and conv1.png of a run folder, from its last.ckpt.</summary>
    public static void DrawRun(string dir, ITrainingReport report)
    {
        var (header, model) = Checkpoint.Load(Path.Combine(dir, "last.ckpt"));
        using (model)
        {
            Curves(header.State.History, Path.Combine(dir, "curves.png"), $"AlexNet ({header.Spec.Preset})");
            Conv1Grid(model, Path.Combine(dir, "conv1.png"));
        }
        report.Info($"wrote {Path.GetFullPath(Path.Combine(dir, "curves.png"))} and conv1.png");
    }

    /// <summary>Loss (left) and top-1/top-5 error (right) per epoch, as a PNG.</summary>
    public static void Curves(IReadOnlyList<EpochMetrics> history, string path, string title)
    {
        var epochs = history.Select(m => (double)m.Epoch).ToArray();
        var plot = new ScottPlot.Plot();
        plot.Add.Scatter(epochs, history.Select(m => 100 * m.TrainTop1Error).ToArray()).LegendText = "train top-1 error (augmented crops)";
        plot.Add.Scatter(epochs, history.Select(m => 100 * m.ValTop1Error).ToArray()).LegendText = "val top-1 error";
        plot.Add.Scatter(epochs, history.Select(m => 100 * m.ValTop5Error).ToArray()).LegendText = "val top-5 error";
        foreach (var (values, name) in new[] { (history.Select(m => m.TrainLoss), "train loss"), (history.Select(m => m.ValLoss), "val loss") })
        {
            var line = plot.Add.Scatter(epochs, values.ToArray());
            line.LegendText = name + " (right axis)";
            line.LinePattern = ScottPlot.LinePattern.Dashed;
            line.Axes.YAxis = plot.Axes.Right;
        }
        plot.Title(title);
        plot.XLabel("epoch");
        plot.YLabel("error (%)");
        plot.Axes.Right.Label.Text = "cross-entropy loss";
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, 1000, 500);
    }

    /// <summary>
    /// conv1's kernels as tiles, each scaled to 0..255 on its own (as cuda-convnet shows them): tower a's kernels in
    /// the top rows, tower b's below, separated by a gap, like Figure 3 of the paper.
    /// </summary>
    public static void Conv1Grid(AlexNetModule model, string path, int? scale = null, int perRow = 24)
    {
        var k = model.Spec.Conv1Kernel;
        var px = scale ?? Math.Max(4, 48 / k);                                // 11x11 kernels at 4x, 5x5 at 9x
        var count = model.Spec.Conv1;
        perRow = Math.Min(perRow, count);
        var rowsPerTower = (count + perRow - 1) / perRow;
        var tile = k * px + 2;
        var gap = tile / 2;
        using var image = new Image<Rgb24>(perRow * tile + 2, 2 * rowsPerTower * tile + gap + 2, new Rgb24(255, 255, 255));
        foreach (var (tower, t) in new[] { ('a', 0), ('b', 1) })
        {
            using var w = model.Conv1Kernels(tower).detach().cpu();          // (count, 3, k, k)
            var data = w.data<float>().ToArray();
            for (var i = 0; i < count; i++)
            {
                var kernel = data[(i * 3 * k * k)..((i + 1) * 3 * k * k)];
                float min = kernel.Min(), max = kernel.Max();
                var range = Math.Max(max - min, 1e-12f);
                var (ox, oy) = (1 + i % perRow * tile, 1 + t * (rowsPerTower * tile + gap) + i / perRow * tile);
                for (var y = 0; y < k * px; y++)
                    for (var x = 0; x < k * px; x++)
                    {
                        int ky = y / px, kx = x / px;
                        byte C(int c) => (byte)(255 * (kernel[(c * k + ky) * k + kx] - min) / range);
                        image[ox + 1 + x, oy + 1 + y] = new Rgb24(C(0), C(1), C(2));
                    }
            }
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        image.SaveAsPng(path);
    }
}
