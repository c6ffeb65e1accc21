using System.CommandLine;
using AlexNet.Training;
using AlexNet.Training.Training;
using TorchSharp;

torch.set_num_threads(Environment.ProcessorCount);
return Cli.Build().Parse(args).Invoke();
