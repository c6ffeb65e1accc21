using AlexNet.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace AlexNet.Training.Networks;

/// <summary>
/// The paper's two-tower AlexNet (section 3.5, Figure 2). Each layer exists once per tower (a, b); conv2, conv4 and
/// conv5 see only their own tower, conv3 and the fully connected layers see both. With two devices tower a lives on
/// the first and tower b on the second, and activations cross devices only where the paper exchanges them: into
/// conv3, fc6, fc7 and fc8. Input: RGB pixels (N, 3, S, S) in 0..255; normalisation is the model's first step, as in
/// the exported graph. Output: logits (N, classes).
/// </summary>
public sealed class AlexNetModule : Module<Tensor, Tensor>
{
    public AlexNetSpec Spec { get; }
    public Device DeviceA { get; private set; } = CPU;
    public Device DeviceB { get; private set; } = CPU;

    readonly Conv2d conv1a, conv1b, conv2a, conv2b, conv3a, conv3b, conv4a, conv4b, conv5a, conv5b;
    readonly Linear fc6a, fc6b, fc7a, fc7b, fc8;
    readonly LocalResponseNorm lrn;
    readonly MaxPool2d pool;
    readonly Dropout dropout;

    public AlexNetModule(AlexNetSpec spec, Normalization norm) : base("AlexNet")
    {
        Spec = spec;
        var (k1, s1, p1) = (spec.Conv1Kernel, spec.Conv1Stride, spec.Conv1Padding);
        conv1a = Conv2d(3, spec.Conv1, k1, stride: s1, padding: p1);
        conv1b = Conv2d(3, spec.Conv1, k1, stride: s1, padding: p1);
        conv2a = Conv2d(spec.Conv1, spec.Conv2, 5, padding: 2);
        conv2b = Conv2d(spec.Conv1, spec.Conv2, 5, padding: 2);
        conv3a = Conv2d(2 * spec.Conv2, spec.Conv3, 3, padding: 1);      // sees both towers
        conv3b = Conv2d(2 * spec.Conv2, spec.Conv3, 3, padding: 1);
        conv4a = Conv2d(spec.Conv3, spec.Conv4, 3, padding: 1);
        conv4b = Conv2d(spec.Conv3, spec.Conv4, 3, padding: 1);
        conv5a = Conv2d(spec.Conv4, spec.Conv5, 3, padding: 1);
        conv5b = Conv2d(spec.Conv4, spec.Conv5, 3, padding: 1);
        fc6a = Linear(spec.Fc6Inputs, spec.Fc);                              // 9216 -> 2048 per tower
        fc6b = Linear(spec.Fc6Inputs, spec.Fc);
        fc7a = Linear(2 * spec.Fc, spec.Fc);
        fc7b = Linear(2 * spec.Fc, spec.Fc);
        fc8 = Linear(2 * spec.Fc, spec.Classes);
        lrn = LocalResponseNorm(AlexNet.Model.Onnx.AlexNetOnnxGraph.LrnSize, AlexNet.Model.Onnx.AlexNetOnnxGraph.LrnAlpha,
            AlexNet.Model.Onnx.AlexNetOnnxGraph.LrnBeta, AlexNet.Model.Onnx.AlexNetOnnxGraph.LrnBias);
        pool = MaxPool2d(3, 2);                                             // overlapping: 3x3, stride 2
        dropout = Dropout(0.5);
        register_buffer("mean", tensor(norm.Mean).reshape(1, 3, 1, 1));   // (1, 3, 1, 1), pixel units
        register_buffer("std", tensor(norm.Std).reshape(1, 3, 1, 1));
        RegisterComponents();
        Initialize(InitScheme.Paper);
    }

    public Normalization Normalization => new(Buffer("mean").cpu().data<float>().ToArray(), Buffer("std").cpu().data<float>().ToArray());

    Tensor Buffer(string name) => named_buffers().First(p => p.name == name).buffer;

    /// <summary>Layers of tower b; the rest (tower a, fc8, normalisation) lives on the first device.</summary>
    IEnumerable<Module> TowerB => [conv1b, conv2b, conv3b, conv4b, conv5b, fc6b, fc7b];

    /// <summary>Places tower a on <paramref name="a"/> and tower b on <paramref name="b"/> (fc8 and the
    /// normalisation go with tower a). Pass the same device twice for a single device.</summary>
    public AlexNetModule Place(Device a, Device b)
    {
        this.to(a);                                   // everything, buffers included, then tower b moves over
        foreach (var m in TowerB) m.to(b);
        (DeviceA, DeviceB) = (a, b);
        return this;
    }

    public override Tensor forward(Tensor x) => Forward(x).Logits;

    /// <summary>Logits (N, classes) and FC7 features (N, 2 * Fc), post-ReLU (and post-dropout when training).</summary>
    public (Tensor Logits, Tensor Features) Forward(Tensor x, Dictionary<string, Tensor>? trace = null)
    {
        var (A, B) = (DeviceA, DeviceB);
        x = (x.to(A) - Buffer("mean")) / Buffer("std");
        var a = F.relu(conv1a.call(x));                                       // (N, 48, 55, 55)
        var b = F.relu(conv1b.call(x.to(B)));
        Record(trace, "conv1", a, b);
        a = pool.call(lrn.call(a));                                           // (N, 48, 27, 27)
        b = pool.call(lrn.call(b));
        Record(trace, "pool1", a, b);
        a = F.relu(conv2a.call(a));                                           // (N, 128, 27, 27): own tower only
        b = F.relu(conv2b.call(b));
        Record(trace, "conv2", a, b);
        a = pool.call(lrn.call(a));                                           // (N, 128, 13, 13)
        b = pool.call(lrn.call(b));
        Record(trace, "pool2", a, b);
        var a3 = F.relu(conv3a.call(cat([a, b.to(A)], 1)));                   // (N, 192, 13, 13): both towers
        var b3 = F.relu(conv3b.call(cat([a.to(B), b], 1)));
        Record(trace, "conv3", a3, b3);
        a = F.relu(conv4a.call(a3));
        b = F.relu(conv4b.call(b3));
        Record(trace, "conv4", a, b);
        a = F.relu(conv5a.call(a));
        b = F.relu(conv5b.call(b));
        Record(trace, "conv5", a, b);
        a = pool.call(a);                                                     // (N, 128, 6, 6)
        b = pool.call(b);
        Record(trace, "pool5", a, b);
        var fa = cat([a, b.to(A)], 1).flatten(1);                             // (N, 9216), tower a's maps first
        var fb = cat([a.to(B), b], 1).flatten(1);
        var h6a = dropout.call(F.relu(fc6a.call(fa)));                        // (N, 2048)
        var h6b = dropout.call(F.relu(fc6b.call(fb)));
        var h7a = dropout.call(F.relu(fc7a.call(cat([h6a, h6b.to(A)], 1))));
        var h7b = dropout.call(F.relu(fc7b.call(cat([h6a.to(B), h6b], 1))));
        var features = cat([h7a, h7b.to(A)], 1);                              // (N, 4096)
        return (fc8.call(features), features);                               // (N, classes)
    }

    static void Record(Dictionary<string, Tensor>? trace, string name, Tensor a, Tensor b)
    {
        if (trace is null) return;
        trace[name + "a"] = a;
        trace[name + "b"] = b;
    }

    /// <summary>Conv1 kernels of one tower: (Conv1, 3, k, k).</summary>
    public Tensor Conv1Kernels(char tower) => tower == 'a' ? conv1a.weight! : conv1b.weight!;

    /// <summary>Layers by the paper's name, for initialisation and fine-tuning.</summary>
    public IEnumerable<(string Name, Module Layer, Tensor Weight, Tensor Bias)> Layers()
    {
        foreach (var (n, m) in new (string, Module)[]
                 {
                     ("conv1a", conv1a), ("conv1b", conv1b), ("conv2a", conv2a), ("conv2b", conv2b), ("conv3a", conv3a),
                     ("conv3b", conv3b), ("conv4a", conv4a), ("conv4b", conv4b), ("conv5a", conv5a), ("conv5b", conv5b),
                     ("fc6a", fc6a), ("fc6b", fc6b), ("fc7a", fc7a), ("fc7b", fc7b), ("fc8", fc8),
                 })
        {
            var (w, bias) = m switch
            {
                Conv2d c => (c.weight!, c.bias!),
                Linear l => (l.weight!, l.bias!),
                _ => throw new InvalidOperationException(n),
            };
            yield return (n, m, w, bias);
        }
    }

    /// <summary>Sets weights and biases by a named scheme (see <see cref="InitScheme"/>). Seed torch first.</summary>
    public void Initialize(InitScheme scheme)
    {
        using var _ = no_grad();
        foreach (var (name, layer, w, b) in Layers())
        {
            var (std, bias) = InitRule(scheme, name, w);
            w.normal_(0, std);
            b.fill_(bias);
        }
    }

    /// <summary>The standard deviation of the weights and the bias value of one layer under a scheme.</summary>
    public static (double Std, double Bias) InitRule(InitScheme scheme, string layer, Tensor weight)
    {
        var kind = layer.TrimEnd('a', 'b');                         // conv2a -> conv2
        var onesLayer = kind is "conv2" or "conv4" or "conv5" or "fc6" or "fc7";
        return scheme switch
        {
            // Paper section 5: N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden fc layers, 0 elsewhere.
            InitScheme.Paper => (0.01, onesLayer ? 1.0 : 0.0),
            // Caffe bvlc_alexnet: biases 0.1 where the paper has 1; fc6/fc7 weights std 0.005.
            InitScheme.Caffe => (kind is "fc6" or "fc7" ? 0.005 : 0.01, onesLayer ? 0.1 : 0.0),
            // He et al. 2015: std sqrt(2 / fan_in), biases 0. Not the paper's; converges fastest on small data.
            InitScheme.Kaiming => (Math.Sqrt(2.0 / (weight.numel() / weight.shape[0])), 0.0),
            _ => throw new ArgumentOutOfRangeException(nameof(scheme)),
        };
    }
}

public enum InitScheme { Paper, Caffe, Kaiming }
