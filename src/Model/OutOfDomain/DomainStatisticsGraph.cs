using AlexNet.Model.Onnx;

namespace AlexNet.Model.OutOfDomain;

/// <summary>How a tapped tensor is summarised: the input image (N, 3, S, S) in pixels 0..255, a ReLU feature map
/// (N, C, H, W), or a ReLU vector (N, C).</summary>
public enum TapKind { Image, Map, Vector }

/// <summary>A tensor of the graph whose summary goes into <c>ood_stats</c>.</summary>
/// <param name="Name">The group's name in the statistics (input, conv1, ..., fc7).</param>
/// <param name="Channels">C (3 for the image).</param>
/// <param name="Side">S of an image tap (its grid is 4x4 cells of S / 4); unused otherwise.</param>
public sealed record StatisticTap(string Name, string Tensor, TapKind Kind, int Channels, int Side = 0)
{
    /// <summary>Cells per side of an image tap's grid of average-pooled cells.</summary>
    public const int GridCells = 4;
    public int CellSide => Side / GridCells;
    public int Grid => (Side - CellSide) / CellSide + 1;
}

/// <summary>A block of <c>ood_stats</c> columns that is scored as one (a layer, or one kind of input statistic).</summary>
public sealed record StatisticGroup(string Name, int Length);

/// <summary>
/// Summary statistics of several layers as one extra graph output, <c>ood_stats</c> (N, D), computed inside the graph
/// from tensors it already has, so the service pays one output and the nodes that compute <c>probabilities</c> and
/// <c>features</c> are untouched. Per tap, in column order:
/// <list type="bullet">
/// <item>image: per channel the mean and the mean square of pixels / 255 in a 4x4 grid of cells (where the light and dark
/// parts are), then per channel the mean square of each pixel's distance to its own channel mean (how coloured it is):
/// groups <c>input.grid</c> (2 x 3 x 16) and <c>input.colour</c> (3);</item>
/// <item>ReLU map: per channel the spatial mean and mean square (the diagonal of the Gram matrix; Sastry and Oore 2020):
/// 2C columns;</item>
/// <item>ReLU vector (fc6, FC7): the vector itself, C columns.</item>
/// </list>
/// Which values are normal is learnt from data (<see cref="DomainStatistics.Fit"/>); nothing here knows the data set.
/// </summary>
public static class DomainStatisticsGraph
{
    public const string Output = "ood_stats";
    const string Prefix = "ood.";

    /// <summary>Whether a tensor name belongs to these nodes (so a second edit replaces them).</summary>
    public static bool Owns(string tensor) => tensor == Output || tensor.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>The taps of the two-tower graph written by <see cref="AlexNetOnnxGraph"/>.</summary>
    public static IReadOnlyList<StatisticTap> ForAlexNet(AlexNetSpec spec) =>
    [
        new("input", OnnxContract.Input, TapKind.Image, 3, spec.InputSize),
        new("conv1", "conv1_relu", TapKind.Map, 2 * spec.Conv1),
        new("conv2", "conv2_relu", TapKind.Map, 2 * spec.Conv2),
        new("conv3", "conv3_relu", TapKind.Map, 2 * spec.Conv3),
        new("conv4", "conv4_relu", TapKind.Map, 2 * spec.Conv4),
        new("conv5", "conv5_relu", TapKind.Map, 2 * spec.Conv5),
        new("fc6", "fc6_relu", TapKind.Vector, 2 * spec.Fc),
        new("fc7", OnnxContract.Features, TapKind.Vector, 2 * spec.Fc),
    ];

    /// <summary>The column groups of <c>ood_stats</c> for <paramref name="taps"/>, in column order.</summary>
    public static IReadOnlyList<StatisticGroup> Groups(IReadOnlyList<StatisticTap> taps) => [.. taps.SelectMany(t => t.Kind switch
    {
        TapKind.Image => new StatisticGroup[] { new($"{t.Name}.grid", 2 * t.Channels * t.Grid * t.Grid), new($"{t.Name}.colour", t.Channels) },
        TapKind.Map => [new(t.Name, 2 * t.Channels)],
        _ => [new(t.Name, t.Channels)],
    })];

    /// <summary>A fragment for <see cref="OnnxFileEditor.Merge"/>: the nodes and the output <c>ood_stats</c> (N, D).</summary>
    public static OnnxModelBuilder Fragment(IReadOnlyList<StatisticTap> taps)
    {
        var b = new OnnxModelBuilder { NodeNamePrefix = Prefix };
        var columns = new List<string>();
        foreach (var t in taps)
        {
            var p = Prefix + t.Name;
            switch (t.Kind)
            {
                case TapKind.Image:
                    b.Initializer($"{p}.scale", [1f / 255], 1);
                    b.Node("Mul", [t.Tensor, $"{p}.scale"], [$"{p}.pixels"]);                        // (N, 3, S, S) in 0..1
                    b.Node("Mul", [$"{p}.pixels", $"{p}.pixels"], [$"{p}.pixels_sq"]);
                    foreach (var (what, x) in new[] { ("mean", $"{p}.pixels"), ("sq", $"{p}.pixels_sq") })
                    {
                        b.Node("AveragePool", [x], [$"{p}.grid_{what}"], ("kernel_shape", new long[] { t.CellSide, t.CellSide }),
                            ("strides", new long[] { t.CellSide, t.CellSide }));                    // (N, 3, 4, 4)
                        b.Node("Flatten", [$"{p}.grid_{what}"], [$"{p}.grid_{what}_flat"], ("axis", 1));
                        columns.Add($"{p}.grid_{what}_flat");
                    }
                    b.Node("ReduceMean", [$"{p}.pixels"], [$"{p}.grey"], ("axes", new long[] { 1 }), ("keepdims", 1));   // (N, 1, S, S)
                    b.Node("Sub", [$"{p}.pixels", $"{p}.grey"], [$"{p}.chroma"]);
                    b.Node("Mul", [$"{p}.chroma", $"{p}.chroma"], [$"{p}.chroma_sq"]);
                    b.Node("GlobalAveragePool", [$"{p}.chroma_sq"], [$"{p}.colour"]);                 // (N, 3, 1, 1)
                    b.Node("Flatten", [$"{p}.colour"], [$"{p}.colour_flat"], ("axis", 1));
                    columns.Add($"{p}.colour_flat");
                    break;
                case TapKind.Map:
                    b.Node("GlobalAveragePool", [t.Tensor], [$"{p}.mean"]);                          // (N, C, 1, 1)
                    b.Node("Flatten", [$"{p}.mean"], [$"{p}.mean_flat"], ("axis", 1));
                    b.Node("Mul", [t.Tensor, t.Tensor], [$"{p}.sq"]);
                    b.Node("GlobalAveragePool", [$"{p}.sq"], [$"{p}.msq"]);
                    b.Node("Flatten", [$"{p}.msq"], [$"{p}.msq_flat"], ("axis", 1));
                    columns.Add($"{p}.mean_flat");
                    columns.Add($"{p}.msq_flat");
                    break;
                default:
                    columns.Add(t.Tensor);                                                           // (N, C) as it is
                    break;
            }
        }
        b.Node("Concat", [.. columns], [Output], ("axis", 1));
        b.FloatOutput(Output, OnnxContract.BatchDim, Groups(taps).Sum(g => g.Length));
        return b;
    }
}
