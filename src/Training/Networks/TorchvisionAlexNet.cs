using AlexNet.Model.Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace AlexNet.Training.Networks;

/// <summary>
/// torchvision's one-tower AlexNet (<see cref="TorchvisionAlexNetSpec"/>), laid out as pytorch/vision
/// <c>torchvision/models/alexnet.py</c> and dotnet/TorchSharp <c>src/TorchVision/models/AlexNet.cs</c> do, so its
/// state dict has exactly torchvision's keys (features.0.weight ... classifier.6.bias) and PyTorch's weights load.
/// Input: RGB pixels (N, 3, 224, 224) in 0..255, as for <see cref="AlexNetModule"/>; torchvision's normalisation
/// (x / 255 - mean) / std is the first step, held in buffers that are not part of the state dict. Output: logits.
/// </summary>
public sealed class TorchvisionAlexNet : Module<Tensor, Tensor>
{
    public TorchvisionAlexNetSpec Spec { get; }
    public Device Device { get; private set; } = CPU;

    // Registered by hand (not RegisterComponents) so that only "features", "avgpool" and "classifier" name the
    // parameters; the fields below are the same modules, kept to reach fc7 between classifier.5 and classifier.6.
    readonly Sequential features, classifier;
    readonly AdaptiveAvgPool2d avgpool;
    readonly Dropout drop6, drop7;
    readonly Linear fc6, fc7, fc8;

    public TorchvisionAlexNet(TorchvisionAlexNetSpec spec, double dropout = 0.5) : base("AlexNet")
    {
        Spec = spec;
        var c = TorchvisionAlexNetSpec.Channels;
        features = Sequential(
            Conv2d(3, c[0], 11, stride: 4, padding: 2), ReLU(), MaxPool2d(3, 2),      // 0-2: (N, 64, 27, 27)
            Conv2d(c[0], c[1], 5, padding: 2), ReLU(), MaxPool2d(3, 2),             // 3-5: (N, 192, 13, 13)
            Conv2d(c[1], c[2], 3, padding: 1), ReLU(),                              // 6-7
            Conv2d(c[2], c[3], 3, padding: 1), ReLU(),                              // 8-9
            Conv2d(c[3], c[4], 3, padding: 1), ReLU(), MaxPool2d(3, 2));            // 10-12: (N, 256, 6, 6)
        avgpool = AdaptiveAvgPool2d([TorchvisionAlexNetSpec.PoolSize, TorchvisionAlexNetSpec.PoolSize]);
        (drop6, fc6, drop7, fc7, fc8) = (Dropout(dropout), Linear(spec.Fc6Inputs, spec.FeatureDim), Dropout(dropout),
            Linear(spec.FeatureDim, spec.FeatureDim), Linear(spec.FeatureDim, spec.Classes));
        classifier = Sequential(drop6, fc6, ReLU(), drop7, fc7, ReLU(), fc8);             // 0-6, classifier.6 is fc8
        register_module("features", features);
        register_module("avgpool", avgpool);
        register_module("classifier", classifier);
        var norm = TorchvisionAlexNetSpec.Normalization;
        register_buffer("mean", tensor(norm.Mean).reshape(1, 3, 1, 1), persistent: false);   // (1, 3, 1, 1), pixel units
        register_buffer("std", tensor(norm.Std).reshape(1, 3, 1, 1), persistent: false);
    }

    Tensor Buffer(string name) => get_buffer(name)!;                         // named_buffers() lists only persistent ones

    public TorchvisionAlexNet Place(Device device)
    {
        this.to(device);
        Device = device;
        return this;
    }

    public override Tensor forward(Tensor x) => Forward(x).Logits;

    /// <summary>Logits (N, classes) and fc7 after its ReLU (N, 4096): the output of classifier.5.</summary>
    public (Tensor Logits, Tensor Features) Forward(Tensor x)
    {
        x = (x.to(Device) - Buffer("mean")) / Buffer("std");
        var f = avgpool.call(features.call(x)).flatten(1);                 // (N, 256, 6, 6) -> (N, 9216); at 224 the pool is the identity
        var h6 = functional.relu(fc6.call(drop6.call(f)));                           // (N, 4096)
        var h7 = functional.relu(fc7.call(drop7.call(h6)));                          // (N, 4096): the feature vector
        return (fc8.call(h7), h7);                                          // (N, classes)
    }

    /// <summary>classifier.6 (fc8): the layer fine-tuning replaces.</summary>
    public Linear LastLayer => fc8;

    /// <summary>The state dict's tensors by torchvision's key (parameters only: the normalisation is not saved).</summary>
    public IEnumerable<(string Key, Tensor Value)> Weights() =>
        state_dict().Select(kv => (kv.Key, kv.Value));
}
