using System.Diagnostics;
using AlexNet.Model;
using AlexNet.Training.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace AlexNet.Training;

public static class Bench
{
    /// <summary>img/s of forward, cross-entropy, backward and an SGD step on one in-memory batch, repeated.</summary>
    public static double TrainingStep(AlexNetSpec spec, int batch, int steps)
    {
        random.manual_seed(0);
        using var model = new AlexNetModule(spec, new Normalization([128f, 128f, 128f], [64f, 64f, 64f]));
        model.Initialize(InitScheme.Kaiming);
        model.train();
        var optimizer = optim.SGD(model.parameters(), 0.01, momentum: 0.9, weight_decay: 5e-4);
        var x = rand(batch, 3, spec.InputSize, spec.InputSize) * 255;
        var y = randint(0, spec.Classes, [batch]);
        var sw = new Stopwatch();
        for (var i = 0; i < steps + 3; i++)
        {
            if (i == 3) sw.Start();
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            nn.functional.cross_entropy(model.call(x), y).backward();
            optimizer.step();
        }
        return steps * batch / sw.Elapsed.TotalSeconds;
    }
}
