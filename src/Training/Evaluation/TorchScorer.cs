using AlexNet.Training.Networks;
using static TorchSharp.torch;

namespace AlexNet.Training.Evaluation;

/// <summary>
/// A TorchSharp network that maps pixels (N, 3, S, S) in 0..255 to logits, run in eval mode without gradients: the
/// two-tower net, the torchvision variant, or either while it is fine-tuned.
/// </summary>
public sealed class TorchScorer(nn.Module<Tensor, Tensor> model, int inputSize, int classes) : IScorer
{
    public TorchScorer(AlexNetModule model) : this(model, model.Spec.InputSize, model.Spec.Classes) { }

    public int Classes => classes;

    public float[] Probabilities(float[] images, int count)
    {
        model.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var x = tensor(images, [count, 3, inputSize, inputSize]);
        return model.call(x).softmax(1).cpu().data<float>().ToArray();   // (N, classes)
    }
}
