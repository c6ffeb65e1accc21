namespace AlexNet.Model.Onnx;

/// <summary>A named weight tensor: row-major values and their shape (PyTorch layout).</summary>
public sealed record WeightTensor(float[] Data, long[] Shape);

/// <summary>
/// The nodes both AlexNet graphs are made of (<see cref="AlexNetOnnxGraph"/>, <see cref="TorchvisionOnnxGraph"/>):
/// the contract's signature and in-graph normalisation, convolution + ReLU, max-pooling and the fc6-fc7-fc8 head that
/// ends in softmax. A layer's initialisers are named <c>{name}.weight</c> and <c>{name}.bias</c>.
/// </summary>
public static class OnnxGraphParts
{
    /// <summary>
    /// A builder with the contract's input <c>image</c> (N, 3, S, S) and outputs <c>probabilities</c> (N, classes) and
    /// <c>features</c> (N, featureDim), and (image - mean) / std, both (1, 3, 1, 1), as the tensor <c>x</c>.
    /// </summary>
    public static OnnxModelBuilder Begin(string graphName, int inputSize, int classes, int featureDim, Normalization norm)
    {
        var b = new OnnxModelBuilder { GraphName = graphName };
        b.FloatInput(OnnxContract.Input, OnnxContract.BatchDim, 3, inputSize, inputSize);
        b.FloatOutput(OnnxContract.Probabilities, OnnxContract.BatchDim, classes);
        b.FloatOutput(OnnxContract.Features, OnnxContract.BatchDim, featureDim);
        b.Initializer("norm.mean", norm.Mean, 1, 3, 1, 1);
        b.Initializer("norm.std", norm.Std, 1, 3, 1, 1);
        b.Node("Sub", [OnnxContract.Input, "norm.mean"], ["x_centred"]);
        b.Node("Div", ["x_centred", "norm.std"], ["x"]);
        return b;
    }

    /// <summary>Conv (square kernel, symmetric padding) writing <paramref name="name"/>, then Relu writing <c>{name}_relu</c>.</summary>
    public static void ConvRelu(OnnxModelBuilder b, string name, string input, WeightTensor weight, WeightTensor bias,
        int group, int kernel, int stride, int pad)
    {
        if (weight.Shape.Length != 4 || weight.Shape[2] != kernel || weight.Shape[3] != kernel)
            throw new ArgumentException($"{name}: weight is [{string.Join(", ", weight.Shape)}], the spec says {kernel}x{kernel} kernels.");
        b.Initializer($"{name}.weight", weight.Data, weight.Shape);
        b.Initializer($"{name}.bias", bias.Data, bias.Shape);
        b.Node("Conv", [input, $"{name}.weight", $"{name}.bias"], [name],
            ("group", group), ("kernel_shape", new long[] { kernel, kernel }), ("strides", new long[] { stride, stride }),
            ("pads", new long[] { pad, pad, pad, pad }));
        b.Node("Relu", [name], [$"{name}_relu"]);
    }

    /// <summary>The paper's overlapping pooling (and torchvision's): 3x3, stride 2, no padding.</summary>
    public static void MaxPool(OnnxModelBuilder b, string input, string output) =>
        b.Node("MaxPool", [input], [output], ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }));

    /// <summary>
    /// (N, C, 6, 6) -> (N, C * 36) channel-major as torch's flatten(1), then fc6 + ReLU, fc7 + ReLU (the output
    /// <c>features</c>, N x 4096), fc8 (<c>logits</c>) and softmax (<c>probabilities</c>). Dropout is the identity at
    /// inference and is left out.
    /// </summary>
    public static void Classifier(OnnxModelBuilder b, string pooled, Layer fc6, Layer fc7, Layer fc8)
    {
        b.Node("Flatten", [pooled], ["flat"], ("axis", 1));
        Gemm(b, fc6, "flat", "fc6");
        b.Node("Relu", ["fc6"], ["fc6_relu"]);
        Gemm(b, fc7, "fc6_relu", "fc7");
        b.Node("Relu", ["fc7"], [OnnxContract.Features]);                    // (N, 4096): the paper's feature vector
        Gemm(b, fc8, OnnxContract.Features, "logits");                      // (N, classes)
        b.Node("Softmax", ["logits"], [OnnxContract.Probabilities], ("axis", 1));
    }

    /// <summary>A fully connected layer's initialiser name and tensors (weight (out, in), bias (out)).</summary>
    public sealed record Layer(string Name, WeightTensor Weight, WeightTensor Bias);

    static void Gemm(OnnxModelBuilder b, Layer layer, string input, string output)
    {
        b.Initializer($"{layer.Name}.weight", layer.Weight.Data, layer.Weight.Shape);
        b.Initializer($"{layer.Name}.bias", layer.Bias.Data, layer.Bias.Shape);
        b.Node("Gemm", [input, $"{layer.Name}.weight", $"{layer.Name}.bias"], [output], ("transB", 1));   // y = x W^T + b
    }
}
