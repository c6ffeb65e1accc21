using AlexNet.Model.Imaging;
using Microsoft.ML.OnnxRuntime;

namespace AlexNet.Api.Tests;

/// <summary>The model run directly, one crop per call, with the shared decoder and preprocessing: what the service
/// must agree with.</summary>
public sealed class Reference : IDisposable
{
    readonly InferenceSession _session;
    readonly ImagePreprocessor _pre = new(TestModel.Spec);

    public Reference(string modelPath) => _session = new InferenceSession(modelPath);

    public PreparedImage Prepare(byte[] bytes)
    {
        using var image = SafeImageDecoder.Default.Decode(bytes);
        return _pre.Prepare(image);
    }

    public IReadOnlyList<CropWindow> TenCrops => _pre.TenCrops;
    public CropWindow Center => _pre.Center;

    /// <summary>Probabilities (classes) and features (FeatureDim) of one crop, as a batch of one.</summary>
    public (float[] Probabilities, float[] Features) Run(PreparedImage image, CropWindow crop)
    {
        var chw = new float[_pre.CropLength];
        _pre.WriteCrop(image, crop, chw);
        var s = _pre.InputSize;
        using var x = OrtValue.CreateTensorValueFromMemory(chw, [1, 3, s, s]);
        using var runOptions = new RunOptions();
        using var outputs = _session.Run(runOptions, [OnnxContract.Input], [x], [OnnxContract.Probabilities, OnnxContract.Features]);
        return (outputs[0].GetTensorDataAsSpan<float>().ToArray(), outputs[1].GetTensorDataAsSpan<float>().ToArray());
    }

    public void Dispose() => _session.Dispose();
}
