using TorchSharp;
using static TorchSharp.torch;

namespace AlexNet.Training.Networks;

/// <summary>
/// Where the two towers live: "cpu", "cuda", "cuda:0,cuda:1" (tower a on the first, tower b on the second).
/// One device means both towers share it. CUDA asked for on a machine without it falls back to the CPU with a
/// warning that the caller must print: training on the wrong device silently would waste a day.
/// </summary>
public sealed record DevicePlacement(Device A, Device B, string? Warning)
{
    public static DevicePlacement Parse(string spec)
    {
        var parts = spec.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length is < 1 or > 2)
            throw new ArgumentException($"--devices takes one or two devices (e.g. cpu, cuda:0 or cuda:0,cuda:1), not '{spec}'.");
        var unavailable = new List<string>();
        var devices = parts.Select(p =>
        {
            if (!p.StartsWith("cuda", StringComparison.OrdinalIgnoreCase)) return device(p);
            if (cuda.is_available()) return device(p);
            unavailable.Add(p);
            return CPU;
        }).ToArray();
        // One warning naming every device that was asked for and is not there (cuda:0,cuda:1 named both).
        var warning = unavailable.Count == 0 ? null
            : $"WARNING: {string.Join(" and ", unavailable.Select(d => $"'{d}'"))} {(unavailable.Count > 1 ? "were" : "was")} requested but CUDA " +
              "is not available (this build uses the CPU libtorch package, or no GPU is present). " +
              (unavailable.Count == parts.Length ? "Both towers run on the CPU." : "Those towers run on the CPU.");
        return new DevicePlacement(devices[0], devices.Length > 1 ? devices[1] : devices[0], warning);
    }

    public override string ToString() => A.Equals(B) ? $"{A} (both towers)" : $"tower a on {A}, tower b on {B}";
}
