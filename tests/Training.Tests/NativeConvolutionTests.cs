using System.Runtime.InteropServices;
using AlexNet.Training.Runtime;

namespace AlexNet.Training.Tests;

/// <summary>
/// libtorch's convolutions against a naive one, for every convolution of both presets (one tower's shape each). On AMD
/// Zen 5, libtorch 2.10's AVX-512 oneDNN kernels get the compact conv2 (24 -> 64, 5x5) about 20% wrong;
/// <see cref="TorchRuntime"/> caps oneDNN at AVX2 unless told otherwise, and these tests fail wherever the kernels in
/// use are wrong.
/// </summary>
public class NativeConvolutionTests
{
    public static TheoryData<string, string> Layers()
    {
        var data = new TheoryData<string, string>();
        foreach (var preset in new[] { "compact", "paper" })
            foreach (var (layer, _) in Shapes(AlexNetSpec.FromPreset(preset, 10))) data.Add(preset, layer);
        return data;
    }

    /// <summary>(layer, (cin, size, cout, k, stride, pad)) for one tower, from the spec's sizes.</summary>
    static IEnumerable<(string Layer, (int Cin, int Size, int Cout, int K, int Stride, int Pad) Shape)> Shapes(AlexNetSpec s)
    {
        var pool1 = (s.Conv1Out - 3) / 2 + 1;
        var pool2 = (pool1 - 3) / 2 + 1;
        yield return ("conv1", (3, s.InputSize, s.Conv1, s.Conv1Kernel, s.Conv1Stride, s.Conv1Padding));
        yield return ("conv2", (s.Conv1, pool1, s.Conv2, 5, 1, 2));
        yield return ("conv3", (2 * s.Conv2, pool2, s.Conv3, 3, 1, 1));   // sees both towers
        yield return ("conv4", (s.Conv3, pool2, s.Conv4, 3, 1, 1));
        yield return ("conv5", (s.Conv4, pool2, s.Conv5, 3, 1, 1));
    }

    [Theory]
    [MemberData(nameof(Layers))]
    public void LibtorchConvolutionsMatchANaiveOne(string preset, string layer)
    {
        TorchSetup.Ensure();
        var (cin, size, cout, k, stride, pad) = Shapes(AlexNetSpec.FromPreset(preset, 10)).Single(l => l.Layer == layer).Shape;
        var error = TorchRuntime.ConvolutionError(cin, size, cout, k, stride, pad);
        Assert.True(error < 1e-5, $"{preset} {layer} ({cin} -> {cout}, {k}x{k}/{stride} on {size}): {error:E2} of the largest output " +
                                  $"off a naive convolution with {TorchRuntime.IsaVariable}={TorchRuntime.IsaCap}.");
    }

    [DllImport("libc", EntryPoint = "getenv")]
    static extern IntPtr NativeGetenv(string name);

    [Fact]
    public void TheIsaCapReachesTheNativeEnvironmentThatOneDnnReads()
    {
        TorchRuntime.Initialize();
        var native = Marshal.PtrToStringAnsi(NativeGetenv(TorchRuntime.IsaVariable));
        Assert.False(string.IsNullOrEmpty(native), $"{TorchRuntime.IsaVariable} is not in the native environment.");
        Assert.Equal(Environment.GetEnvironmentVariable(TorchRuntime.IsaVariable), native);
        TorchRuntime.CheckConvolutions();   // throws if the default shape is wrong
    }
}
