using TorchSharp;

namespace AlexNet.Training.Tests;

/// <summary>libtorch's thread pool is global: two threads for the whole run (2-core machines), set once.</summary>
static class TorchSetup
{
    static TorchSetup() => torch.set_num_threads(Math.Min(Environment.ProcessorCount, 2));
    public static void Ensure() { }

    /// <summary>Before any test touches libtorch: the oneDNN ISA cap of <see cref="Runtime.TorchRuntime"/>.</summary>
    [System.Runtime.CompilerServices.ModuleInitializer]
    internal static void BeforeAnyTest() => Runtime.TorchRuntime.Initialize();
}

/// <summary>A temp folder per test, removed afterwards.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("alexnet-test-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, recursive: true); } catch (IOException) { } }
}
