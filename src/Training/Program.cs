using AlexNet.Training.Commands;
using AlexNet.Training.Runtime;
using TorchSharp;

TorchRuntime.Initialize();   // before the first libtorch call (also done when the assembly loads)
torch.set_num_threads(Environment.ProcessorCount);
try
{
    return Cli.Build().Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or InvalidOperationException
                              or UnauthorizedAccessException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
{
    // Mistakes of the user (a missing folder, a bad file, a wrong option) get one clear line, not a stack trace.
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
