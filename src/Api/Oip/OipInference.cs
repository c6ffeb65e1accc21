using System.Globalization;
using AlexNet.Api.Endpoints;
using AlexNet.Api.Http;
using AlexNet.Api.Inference;
using AlexNet.Model;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Oip;

/// <summary>
/// Answers an Open Inference Protocol request, whichever transport carried it (Endpoints/OipEndpoints.cs for REST,
/// <see cref="OipGrpcService"/> for gRPC), with the same parts as /api/classify: a slot of <see cref="AdmissionControl"/>
/// (503 at capacity), a lease on the generation in service, the work charged to the client, and the
/// <see cref="InferencePipeline"/>: encoded images (BYTES) are decoded by the hardened decoder with every upload limit
/// and preprocessed exactly as /api/classify does (its cache included); FP32 rows go to the batcher as they are. The
/// caller holds an <see cref="UploadGate"/> place while it reads the body. Throws <see cref="RefusedException"/>.
/// </summary>
public sealed class OipInference(OipModels models, AdmissionControl admission, UploadGate gate, IOptions<UploadOptions> uploads)
{
    readonly UploadOptions _limits = uploads.Value;

    /// <summary>Most elements one input may declare before its data is read: a request carries at most
    /// Uploads:MaxRequestBytes bytes, and every element takes at least one.</summary>
    public long MaxElements => _limits.MaxRequestBytes;

    public async Task<OipInferResult> InferAsync(OipInferRequest request, HttpContext http, CancellationToken ct)
    {
        var served = models.Check(request.ModelName, request.ModelVersion);
        var pipeline = served.Pipeline;
        if (request.Inputs.Count != 1)
            throw RefusedException.BadInput($"The request has {request.Inputs.Count} inputs; send one: '{OnnxContract.Input}' (FP32 [N, 3, S, S]) " +
                $"or '{OipModels.EncodedInput}' (BYTES [N], encoded images). GET /v2/models/{served.Name} describes both.");
        var input = request.Inputs[0];
        using var slot = admission.Enter();
        using var lease = served.Host.Acquire();
        var model = lease.Model;
        var requested = CheckOutputs(request, model, served.Name);   // before the model runs
        Prediction[] predictions;
        if (input.Name == OnnxContract.Input)
        {
            RequireType(input, Datatypes.Fp32);
            var s = model.InputSize;
            if (input.Shape is not [var n, 3, var h, var w] || h != s || w != s || n < 1 || n > _limits.MaxImagesPerRequest)
                throw RefusedException.BadInput($"Input '{input.Name}' has shape [{string.Join(", ", input.Shape)}]; this model takes [N, 3, {s}, {s}] " +
                    $"with N from 1 to {_limits.MaxImagesPerRequest} (Uploads:MaxImagesPerRequest).");
            gate.ChargeWork(http, (int)n);
            predictions = await pipeline.AnalyzeRowsAsync(lease.Generation, input.Floats!, (int)n, ct);
        }
        else if (input.Name == OipModels.EncodedInput)
        {
            RequireType(input, Datatypes.Bytes);
            var n = input.Shape is [var a] ? a : input.Shape is [var b, 1] ? b : -1;
            if (n < 1 || n > _limits.MaxImagesPerRequest)
                throw RefusedException.BadInput($"Input '{input.Name}' has shape [{string.Join(", ", input.Shape)}]; it takes [N] (or [N, 1]) " +
                    $"encoded images with N from 1 to {_limits.MaxImagesPerRequest} (Uploads:MaxImagesPerRequest).");
            var images = input.Elements!;
            for (var i = 0; i < images.Length; i++)
            {
                if (images[i].Length == 0) throw RefusedException.BadInput($"Image {i} (0-based) of '{input.Name}' is empty.");
                if (images[i].Length > _limits.MaxImageBytes)
                    throw RefusedException.TooLarge($"Image {i} (0-based) of '{input.Name}' is {images[i].Length:N0} bytes; the limit is " +
                        $"{_limits.MaxImageBytes:N0} per image (Uploads:MaxImageBytes).");
            }
            gate.ChargeWork(http, images.Length);
            var answers = await pipeline.AnalyzeAsync(lease.Generation, images, tenCrop: false, keepImage: false, UploadGate.Client(http), ct);
            predictions = [.. answers.Select(a => a.Prediction)];
        }
        else
            throw RefusedException.BadInput($"Unknown input '{input.Name}'. Model '{served.Name}' takes '{OnnxContract.Input}' (FP32 [N, 3, " +
                $"{model.InputSize}, {model.InputSize}]) or '{OipModels.EncodedInput}' (BYTES [N]).");
        return new OipInferResult(served.Name, served.Version, request.Id, [.. requested.Select(o => Output(o, model, predictions))]);
    }

    static void RequireType(OipInput input, string datatype)
    {
        if (input.Datatype != datatype)
            throw RefusedException.BadInput($"Input '{input.Name}' has datatype {input.Datatype}; it takes {datatype}.");
    }

    /// <summary>The outputs to answer with, checked: known names, each once, classification only on probabilities.</summary>
    IReadOnlyList<OipRequestedOutput> CheckOutputs(OipInferRequest request, ModelInfo model, string name)
    {
        string[] names = model.HasFeatures ? [OnnxContract.Probabilities, OnnxContract.Features] : [OnnxContract.Probabilities];
        if (request.Outputs.Count == 0) return [.. names.Select(n => new OipRequestedOutput(n, request.BinaryOutputs, null))];
        foreach (var o in request.Outputs)
        {
            if (!names.Contains(o.Name))
                throw RefusedException.BadInput($"Unknown output '{o.Name}'. Model '{name}' has {string.Join(" and ", names.Select(n => $"'{n}'"))}.");
            if (request.Outputs.Count(x => x.Name == o.Name) > 1) throw RefusedException.BadInput($"Output '{o.Name}' is asked for twice.");
            if (o.Classification is { } k)
            {
                if (o.Name != OnnxContract.Probabilities)
                    throw RefusedException.BadInput($"Classification is given for '{OnnxContract.Probabilities}' only, not for '{o.Name}'.");
                UploadServices.CheckK(k, _limits);
            }
        }
        return [.. request.Outputs.Select(o => o with { Binary = o.Binary || request.BinaryOutputs })];
    }

    static OipOutput Output(OipRequestedOutput o, ModelInfo model, Prediction[] predictions)
    {
        var n = predictions.Length;
        if (o.Classification is { } k)
        {
            // Triton's classification extension: "score:index:label" per class, best first, [N, k].
            k = Math.Min(k, model.Classes);
            var strings = predictions.SelectMany(p => Maths.TopK(p.Probabilities, k)
                .Select(s => $"{s.Score.ToString("F6", CultureInfo.InvariantCulture)}:{s.Index}:{model.Labels[s.Index]}")).ToArray();
            return new OipOutput(o.Name, Datatypes.Bytes, [n, k], null, strings, o.Binary);
        }
        var features = o.Name == OnnxContract.Features;
        var width = features ? model.FeatureDim : model.Classes;
        var data = new float[n * width];
        for (var i = 0; i < n; i++) (features ? predictions[i].Features : predictions[i].Probabilities).CopyTo(data, i * width);
        return new OipOutput(o.Name, Datatypes.Fp32, [n, width], data, null, o.Binary);
    }
}
