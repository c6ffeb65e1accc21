using static TorchSharp.torch;

namespace AlexNet.Training.Training;

/// <summary>
/// Any TorchSharp network that maps pixels (N, 3, S, S) in 0..255 to logits, in eval mode without gradients: the
/// torchvision variant, or a two-tower net while it is fine-tuned. <see cref="TorchScorer"/> is the same for
/// <see cref="Model.AlexNetModule"/> alone.
/// </summary>
public sealed class ModuleScorer(nn.Module<Tensor, Tensor> model, int inputSize, int classes) : IScorer
{
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
