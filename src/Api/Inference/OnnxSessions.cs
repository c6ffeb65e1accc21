using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using SessionOptions = Microsoft.ML.OnnxRuntime.SessionOptions;

namespace AlexNet.Api.Inference;

/// <summary>Creates a model's ONNX Runtime session with the service's settings, on CUDA when asked and working.</summary>
public static class OnnxSessions
{
    /// <summary>
    /// All graph optimisations (constant folding, Conv+Relu fusion, NCHWc layouts), one intra-op thread per core and
    /// no inter-op pool (the graph is a chain, so ORT_SEQUENTIAL loses nothing), memory patterns and the CPU arena (the
    /// batch sizes repeat, so buffers are planned once per size and reused). Spinning is off by default: the pool's
    /// threads would otherwise busy-wait after every parallel section, burning the cores that decode the next uploads.
    /// </summary>
    public static SessionOptions NewOptions(InferenceOptions options)
    {
        var o = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = options.IntraOpThreads > 0 ? options.IntraOpThreads : Environment.ProcessorCount,
            InterOpNumThreads = 1,
            EnableMemoryPattern = true,
            EnableCpuMemArena = true,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        o.AddSessionConfigEntry("session.intra_op.allow_spinning", options.IntraOpSpinning ? "1" : "0");
        return o;
    }

    /// <summary>The first library the CUDA provider needs that does not load, or null when all do. Looked for before
    /// asking ONNX Runtime, whose failed load prints a native error in red on every machine without CUDA.</summary>
    static string? MissingCudaLibrary()
    {
        foreach (var library in new[] { "libcuda.so.1", "libcudart.so.13", "libcublasLt.so.13" })
        {
            if (!NativeLibrary.TryLoad(library, out var handle)) return library;
            NativeLibrary.Free(handle);
        }
        return null;
    }

    /// <summary>
    /// CUDA is listed by GetAvailableProviders even without a GPU (the GPU package always lists it), so it is tried, not
    /// looked up. When the CUDA session fails, a CPU session tells a CUDA fault (CPU loads) from a bad file (CPU fails too).
    /// </summary>
    public static (InferenceSession Session, ExecutionProvider Provider) Create(string path, InferenceOptions options, ILogger log)
    {
        Exception? cudaError = null;
        var missing = options.Provider == ExecutionProvider.Auto ? MissingCudaLibrary() : null;
        if (missing is not null)
            log.LogInformation("No CUDA runtime here ({Library} does not load), so the CPU runs the model (Inference:Provider is Auto).", missing);
        if (options.Provider == ExecutionProvider.Cuda || (options.Provider == ExecutionProvider.Auto && missing is null))
        {
            try
            {
                using var cuda = NewOptions(options);
                cuda.AppendExecutionProvider_CUDA(options.CudaDeviceId);
                return (new InferenceSession(path, cuda), ExecutionProvider.Cuda);
            }
            catch (Exception e) when (e is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
            {
                cudaError = e;
            }
        }
        InferenceSession cpuSession;
        try
        {
            using var cpu = NewOptions(options);
            cpuSession = new InferenceSession(path, cpu);
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidDataException($"{path}: ONNX Runtime cannot load this model: {e.Message}", e);
        }
        if (cudaError is null) return (cpuSession, ExecutionProvider.Cpu);
        if (options.Provider == ExecutionProvider.Cuda)
        {
            cpuSession.Dispose();
            throw new CudaUnavailableException(
                $"Inference:Provider is Cuda but CUDA did not start on device {options.CudaDeviceId}: {cudaError.Message} " +
                "(this build needs the CUDA 13 runtime and cuDNN 9; set Inference:Provider to Auto or Cpu to run on the CPU).", cudaError);
        }
        log.LogWarning("CUDA did not start ({Error}); Inference:Provider is Auto, so the CPU runs the model.", cudaError.Message);
        return (cpuSession, ExecutionProvider.Cpu);
    }
}
