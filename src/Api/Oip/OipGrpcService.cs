using AlexNet.Api.Http;
using AlexNet.Api.Oip.Grpc;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace AlexNet.Api.Oip;

/// <summary>
/// The Open Inference Protocol's <c>inference.GRPCInferenceService</c> (inference.proto), on the port of Grpc:Url.
/// It answers as the REST routes do (<see cref="OipInference"/>): inputs as typed contents (fp32_contents,
/// bytes_contents) or raw_input_contents (BYTES elements each after a 4-byte little-endian length, as Triton sends
/// them); outputs come back in the form the inputs came in (raw_output_contents for raw inputs, typed contents
/// otherwise). Refusals become the gRPC status of their kind (<see cref="Status"/>).
/// </summary>
public sealed class OipGrpcService(OipModels models, OipInference inference, UploadGate gate)
    : GRPCInferenceService.GRPCInferenceServiceBase
{
    public override Task<ServerLiveResponse> ServerLive(ServerLiveRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerLiveResponse { Live = true });

    public override Task<ServerReadyResponse> ServerReady(ServerReadyRequest request, ServerCallContext context) =>
        Task.FromResult(new ServerReadyResponse { Ready = models.Ready });

    public override Task<ModelReadyResponse> ModelReady(ModelReadyRequest request, ServerCallContext context) => Answer(() =>
    {
        return new ModelReadyResponse { Ready = models.Check(request.Name, request.Version).Ready };
    });

    public override Task<ServerMetadataResponse> ServerMetadata(ServerMetadataRequest request, ServerCallContext context)
    {
        var m = OipModels.Server();
        return Task.FromResult(new ServerMetadataResponse { Name = m.Name, Version = m.Version, Extensions = { m.Extensions } });
    }

    public override Task<ModelMetadataResponse> ModelMetadata(ModelMetadataRequest request, ServerCallContext context) => Answer(() =>
    {
        var m = models.Metadata(request.Name, request.Version);
        return new ModelMetadataResponse
        {
            Name = m.Name, Platform = m.Platform, Versions = { m.Versions },
            Inputs = { m.Inputs.Select(Tensor) }, Outputs = { m.Outputs.Select(Tensor) },
        };
    });

    static ModelMetadataResponse.Types.TensorMetadata Tensor(OipTensorMetadata t) =>
        new() { Name = t.Name, Datatype = t.Datatype, Shape = { t.Shape } };

    public override async Task<ModelInferResponse> ModelInfer(ModelInferRequest request, ServerCallContext context)
    {
        var http = context.GetHttpContext();
        try
        {
            using var permit = gate.Enter(http, request.CalculateSize());   // the message is already read: hold its size
            var raw = request.RawInputContents.Count > 0;
            var parsed = Parse(request, raw, inference.MaxElements);
            var result = await inference.InferAsync(parsed, http, context.CancellationToken);
            var response = new ModelInferResponse { ModelName = result.ModelName, ModelVersion = result.ModelVersion, Id = result.Id ?? "" };
            foreach (var o in result.Outputs)
            {
                var tensor = new ModelInferResponse.Types.InferOutputTensor { Name = o.Name, Datatype = o.Datatype, Shape = { o.Shape } };
                if (raw) response.RawOutputContents.Add(ByteString.CopyFrom(o.Raw()));
                else if (o.Floats is { } f) tensor.Contents = new InferTensorContents { Fp32Contents = { f } };
                else tensor.Contents = new InferTensorContents { BytesContents = { o.Strings!.Select(ByteString.CopyFromUtf8) } };
                response.Outputs.Add(tensor);
            }
            return response;
        }
        catch (RefusedException e)
        {
            throw ToRpc(e);
        }
    }

    static OipInferRequest Parse(ModelInferRequest request, bool raw, long maxElements)
    {
        if (raw && request.RawInputContents.Count != request.Inputs.Count)
            throw RefusedException.BadInput($"raw_input_contents has {request.RawInputContents.Count} entries for {request.Inputs.Count} inputs; send one per input.");
        var inputs = new List<OipInput>();
        for (var i = 0; i < request.Inputs.Count; i++)
        {
            var t = request.Inputs[i];
            if (t.Datatype is not (Datatypes.Fp32 or Datatypes.Bytes))
                throw RefusedException.BadInput($"Input '{t.Name}' has datatype {t.Datatype}; this server takes FP32 and BYTES inputs.");
            var shape = t.Shape.ToArray();
            var count = Tensors.ElementCount(t.Name, shape, maxElements);
            if (raw)
            {
                if (t.Contents is not null)
                    throw RefusedException.BadInput($"Input '{t.Name}' has contents while raw_input_contents is used; send one or the other.");
                var bytes = request.RawInputContents[i].Span;
                inputs.Add(t.Datatype == Datatypes.Fp32
                    ? new OipInput(t.Name, t.Datatype, shape, Tensors.Floats(t.Name, bytes, count), null)
                    : new OipInput(t.Name, t.Datatype, shape, null, Tensors.Elements(t.Name, bytes, count)));
                continue;
            }
            var c = t.Contents ?? new InferTensorContents();
            long given = t.Datatype == Datatypes.Fp32 ? c.Fp32Contents.Count : c.BytesContents.Count;
            if (given != count)
                throw RefusedException.BadInput($"Input '{t.Name}' has {given} {(t.Datatype == Datatypes.Fp32 ? "fp32_contents" : "bytes_contents")} " +
                    $"elements; its shape [{string.Join(", ", shape)}] says {count}.");
            inputs.Add(t.Datatype == Datatypes.Fp32
                ? new OipInput(t.Name, t.Datatype, shape, [.. c.Fp32Contents], null)
                : new OipInput(t.Name, t.Datatype, shape, null, [.. c.BytesContents.Select(b => b.ToByteArray())]));
        }
        var outputs = request.Outputs.Select(o => new OipRequestedOutput(o.Name, false,
            o.Parameters.TryGetValue("classification", out var k) ? Classification(o.Name, k) : null)).ToList();
        return new OipInferRequest(request.ModelName, request.ModelVersion, string.IsNullOrEmpty(request.Id) ? null : request.Id, inputs, outputs);
    }

    static int Classification(string output, InferParameter k) =>
        k.ParameterChoiceCase == InferParameter.ParameterChoiceOneofCase.Int64Param && k.Int64Param is >= 1 and <= int.MaxValue
            ? (int)k.Int64Param
            : throw RefusedException.BadInput($"Output '{output}': classification must be a positive int64_param.");

    static Task<T> Answer<T>(Func<T> answer)
    {
        try
        {
            return Task.FromResult(answer());
        }
        catch (RefusedException e)
        {
            return Task.FromException<T>(ToRpc(e));
        }
    }

    /// <summary>The gRPC status of a refusal: NOT_FOUND, UNAVAILABLE (queue full, not ready), RESOURCE_EXHAUSTED (this
    /// client's limits), else INVALID_ARGUMENT (the REST routes' 400).</summary>
    public static StatusCode Status(Refusal kind) => kind switch
    {
        Refusal.NotFound => StatusCode.NotFound,
        Refusal.Unavailable => StatusCode.Unavailable,
        Refusal.TooManyRequests => StatusCode.ResourceExhausted,
        _ => StatusCode.InvalidArgument,
    };

    static RpcException ToRpc(RefusedException e)
    {
        var trailers = new Metadata();
        if (e.RetryAfterSeconds is { } s) trailers.Add("retry-after", s.ToString());
        return new RpcException(new global::Grpc.Core.Status(Status(e.Kind), e.Message), trailers);
    }
}
