using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace AlexNet.Training.Runtime;

/// <summary>
/// Settings libtorch must have before its first operation, and a known-answer check of its convolutions.
/// <para>libtorch 2.10's oneDNN convolution kernels for AVX-512 give wrong answers on AMD Zen 5 (EPYC family 26)
/// for some shapes, among them both towers' conv2 of the compact preset (24 input channels, 5x5): up to 20% off,
/// while ONNX Runtime and oneDNN's AVX2 kernels agree with a naive convolution to 1e-6 (docs/torchsharp.md). So
/// unless <c>ONEDNN_MAX_CPU_ISA</c> is already set, it is set to AVX2 here, in the native environment (where oneDNN
/// reads it, once, at its first convolution; .NET's Environment.SetEnvironmentVariable does not reach it on Linux).
/// Set the variable yourself (e.g. to ALL) to choose otherwise; <see cref="CheckConvolutions"/> then tells whether
/// the kernels are right on this machine.</para>
/// </summary>
public static class TorchRuntime
{
    public const string IsaVariable = "ONEDNN_MAX_CPU_ISA";
    public const string SafeIsa = "AVX2";
    static int _initialized;

    [DllImport("libc", EntryPoint = "setenv", CharSet = CharSet.Ansi)]
    static extern int SetNativeEnvironment(string name, string value, int overwrite);

    /// <summary>Runs when this assembly loads, so before any TorchSharp call made through it.</summary>
    [ModuleInitializer]
    internal static void OnLoad() => Initialize();

    /// <summary>Caps oneDNN at AVX2 unless ONEDNN_MAX_CPU_ISA is set. Idempotent; effective only before the first
    /// convolution of the process.</summary>
    public static void Initialize()
    {
        if (Interlocked.Exchange(ref _initialized, 1) == 1) return;
        if (!OperatingSystem.IsLinux() || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(IsaVariable))) return;
        SetNativeEnvironment(IsaVariable, SafeIsa, overwrite: 0);
        Environment.SetEnvironmentVariable(IsaVariable, SafeIsa);   // the managed view, for what we print
    }

    /// <summary>The ISA cap oneDNN runs with: the variable's value, or "ALL" when unset.</summary>
    public static string IsaCap => Environment.GetEnvironmentVariable(IsaVariable) is { Length: > 0 } v ? v : "ALL";

    /// <summary>
    /// Largest error, relative to the largest output, of libtorch's convolution against a naive one, for a
    /// (cin -> cout, k x k, stride, pad) layer on a seeded random input; the shape defaults to the one that is wrong on
    /// Zen 5 with AVX-512 kernels.
    /// </summary>
    public static double ConvolutionError(int cin = 24, int size = 13, int cout = 64, int k = 5, int stride = 1, int pad = 2, int seed = 1)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var generator = new Generator((ulong)seed);
        var x = randn([1, cin, size, size], generator: generator) * 20;
        var w = randn([cout, cin, k, k], generator: generator) * (1.0 / Math.Sqrt(cin * k * k));
        var b = randn([cout], generator: generator);
        var y = nn.functional.conv2d(x, w, b, strides: [stride, stride], padding: [pad, pad]);
        var (xs, ws, bs, ys) = (x.data<float>().ToArray(), w.data<float>().ToArray(), b.data<float>().ToArray(), y.data<float>().ToArray());
        var o = (int)y.shape[2];
        double worst = 0, largest = 0;
        for (var oc = 0; oc < cout; oc++)
            for (var oy = 0; oy < o; oy++)
                for (var ox = 0; ox < o; ox++)
                {
                    double acc = bs[oc];
                    for (var c = 0; c < cin; c++)
                        for (var ky = 0; ky < k; ky++)
                        {
                            var iy = oy * stride - pad + ky;
                            if (iy < 0 || iy >= size) continue;
                            for (var kx = 0; kx < k; kx++)
                            {
                                var ix = ox * stride - pad + kx;
                                if (ix >= 0 && ix < size) acc += xs[(c * size + iy) * size + ix] * ws[((oc * cin + c) * k + ky) * k + kx];
                            }
                        }
                    worst = Math.Max(worst, Math.Abs(ys[(oc * o + oy) * o + ox] - acc));
                    largest = Math.Max(largest, Math.Abs(acc));
                }
        return worst / largest;
    }

    /// <summary>Throws when libtorch's convolutions are wrong on this machine (a few milliseconds).</summary>
    public static void CheckConvolutions()
    {
        var error = ConvolutionError();
        if (error > 1e-4)
            throw new InvalidOperationException(
                $"libtorch's convolutions give wrong answers on this CPU ({error:P1} off a naive convolution with {IsaVariable}={IsaCap}). " +
                $"Run with {IsaVariable}={SafeIsa} (the default when the variable is unset); see docs/torchsharp.md.");
    }
}
