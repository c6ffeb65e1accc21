using AlexNet.Model;
using AlexNet.Model.Onnx;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Api.Inference;

/// <summary>
/// The conv1 kernels of the model in service, drawn from its own weights (GET /api/model/conv1.png): any model whose
/// first layer is a convolution, ours (tower a above tower b, as the paper's Figure 3 and the worker's conv1.png), an
/// imported torchvision file or a profiled third-party one. Each kernel is a tile scaled to 0..255 on its own; three
/// input channels are drawn as colour (in RGB order: a BGR model's are swapped), other counts as grey (their mean).
/// Drawn once per model file and kept.
/// </summary>
public sealed class Conv1Picture
{
    /// <summary>Most kernels drawn: a first layer wider than this is drawn up to it.</summary>
    public const int MaxKernels = 1024;
    const int MaxKernelSide = 64;

    readonly Lock _lock = new();
    (string Fingerprint, byte[]? Png)? _last;

    /// <summary>The PNG for <paramref name="model"/>, or null when its first layer is not a convolution with float weights in the file.</summary>
    public byte[]? For(ModelInfo model)
    {
        lock (_lock)
        {
            if (_last is { } last && last.Fingerprint == model.Fingerprint) return last.Png;
            var png = Draw(OnnxWeightReader.FirstConvWeights(model.Path), model.Profile?.ChannelOrder == ChannelOrder.Bgr);
            _last = (model.Fingerprint, png);
            return png;
        }
    }

    /// <summary>One block per first-layer Conv (our towers), stacked with a gap; null when there is nothing to draw.</summary>
    public static byte[]? Draw(IReadOnlyList<OnnxWeight> banks, bool bgr)
    {
        if (banks.Count == 0) return null;
        var (k, kw) = (banks[0].Dims[2], banks[0].Dims[3]);
        if (banks.Any(b => b.Dims[2] != k || b.Dims[3] != kw) || k > MaxKernelSide || kw > MaxKernelSide) return null;
        var (side, sideW) = ((int)k, (int)kw);
        var px = Math.Max(4, 48 / Math.Max(side, sideW));                 // 11x11 kernels at 4x, 5x5 at 9x (as the worker's)
        var counts = banks.Select(b => (int)Math.Min(b.Dims[0], MaxKernels)).ToArray();
        var perRow = Math.Min(24, counts.Max());
        var rows = counts.Select(c => (c + perRow - 1) / perRow).ToArray();
        var (tileW, tileH) = (sideW * px + 2, side * px + 2);
        var gap = tileH / 2;
        using var image = new Image<Rgb24>(perRow * tileW + 2, rows.Sum() * tileH + gap * (banks.Count - 1) + 2, new Rgb24(255, 255, 255));
        var top = 1;
        for (var b = 0; b < banks.Count; b++)
        {
            var w = banks[b];
            var channels = (int)w.Dims[1];
            var plane = side * sideW;
            for (var i = 0; i < counts[b]; i++)
            {
                var kernel = w.Values.AsSpan(i * channels * plane, channels * plane);
                float min = float.PositiveInfinity, max = float.NegativeInfinity;
                foreach (var v in kernel) if (float.IsFinite(v)) { min = Math.Min(min, v); max = Math.Max(max, v); }
                var range = max > min ? max - min : 1f;
                if (!float.IsFinite(min)) min = 0;
                var (ox, oy) = (1 + i % perRow * tileW, top + i / perRow * tileH);
                for (var y = 0; y < side; y++)
                    for (var x = 0; x < sideW; x++)
                    {
                        byte Level(float v) => float.IsFinite(v) ? (byte)Math.Clamp(255 * (v - min) / range, 0, 255) : (byte)0;
                        float At(int c) => w.Values[i * channels * plane + c * plane + y * sideW + x];
                        Rgb24 colour;
                        if (channels == 3)
                        {
                            var (r, g, bl) = bgr ? (At(2), At(1), At(0)) : (At(0), At(1), At(2));
                            colour = new Rgb24(Level(r), Level(g), Level(bl));
                        }
                        else
                        {
                            var sum = 0f;
                            for (var c = 0; c < channels; c++) sum += At(c);
                            var grey = Level(sum / channels * 1f);
                            colour = new Rgb24(grey, grey, grey);
                        }
                        for (var dy = 0; dy < px; dy++)
                            for (var dx = 0; dx < px; dx++)
                                image[ox + 1 + x * px + dx, oy + 1 + y * px + dy] = colour;
                    }
            }
            top += rows[b] * tileH + gap;
        }
        using var ms = new MemoryStream();
        image.SaveAsPng(ms);
        return ms.ToArray();
    }
}
