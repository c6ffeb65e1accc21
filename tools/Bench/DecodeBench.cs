using System.Diagnostics;
using AlexNet.Model.Imaging;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.PixelFormats;
using SixLabors.ImageSharp.Processing;

namespace AlexNet.Bench;

/// <summary>
/// Decode and preprocessing ms per image on one core: the shared path (SafeImageDecoder.Decode, then
/// ImagePreprocessor.Prepare and the centre crop as CHW floats), its parts, and Pillow's decode + resize + crop of
/// the same files in the same run (tools/Bench/pillow_prepare.py, python3 with Pillow).
/// </summary>
public static class DecodeBench
{
    public static void Run(string[] images, double seconds, string? python)
    {
        var decoder = new SafeImageDecoder();
        var pre = new ImagePreprocessor(256, 224);
        var pillow = Pillow(images, seconds, python);
        foreach (var path in images)
        {
            var bytes = File.ReadAllBytes(path);
            using var probe = decoder.Decode(bytes);
            Console.WriteLine($"{Path.GetFileName(path)} ({probe.Width}x{probe.Height}, {bytes.Length:N0} bytes), one core:");
            var chw = new float[pre.CropLength];
            var full = Time(seconds, () =>
            {
                using var image = decoder.Decode(bytes);
                pre.WriteCrop(pre.Prepare(image), pre.Center, chw);
            });
            var decode = Time(seconds, () => decoder.Decode(bytes).Dispose());
            var prepare = Time(seconds, () => pre.Prepare(probe));
            var crop = Time(seconds, () => pre.WriteCrop(pre.Prepare(probe), pre.Center, chw)) - prepare;
            // What SafeImageDecoder costs beyond ImageSharp's JPEG decoder: RGBA decode, orientation, alpha over white.
            var config = Configuration.Default.Clone();
            config.MaxDegreeOfParallelism = 1;
            var jpegOnly = Time(seconds, () => Image.Load<Rgb24>(config, bytes).Dispose());
            Console.WriteLine($"  SafeImageDecoder.Decode           {decode,6:F2} ms   (ImageSharp's bare Load<Rgb24>: {jpegOnly:F2} ms)");
            Console.WriteLine($"  ImagePreprocessor.Prepare         {prepare,6:F2} ms");
            Console.WriteLine($"  WriteCrop (centre, CHW floats)    {crop,6:F2} ms");
            Console.WriteLine($"  decode + prepare + crop           {full,6:F2} ms");
            if (pillow.TryGetValue(path, out var p))
                Console.WriteLine($"  {p.Version} decode+resize+crop     {p.Ms,6:F2} ms   -> ours / Pillow = {full / p.Ms:F2}");
        }
    }

    static double Time(double seconds, Action step)
    {
        for (var i = 0; i < 20; i++) step();
        var sw = Stopwatch.StartNew();
        var n = 0;
        while (sw.Elapsed.TotalSeconds < seconds) { step(); n++; }
        return sw.Elapsed.TotalMilliseconds / n;
    }

    static Dictionary<string, (double Ms, string Version)> Pillow(string[] images, double seconds, string? python)
    {
        var result = new Dictionary<string, (double, string)>();
        var script = Path.Combine(AppContext.BaseDirectory, "pillow_prepare.py");
        if (python is null || !File.Exists(script)) return result;
        var start = new ProcessStartInfo(python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { script, seconds.ToString(System.Globalization.CultureInfo.InvariantCulture) }.Concat(images)) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            Console.WriteLine($"(Pillow not measured: {error.Trim().Split('\n').LastOrDefault()})");
            return result;
        }
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = line.Split(' ');
            result[parts[0]] = (double.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), $"{parts[2]} {parts[3]}");
        }
        return result;
    }
}
