using System.Buffers;

using System.Text.Json;

namespace AlexNet.Api.Oip;

/// <summary>
/// The REST form of an inference request and response (kserve/open-inference-protocol inference_rest.md), with the
/// binary tensor data extension (Triton's docs/protocol/extension_binary_data.md): a JSON header of
/// Inference-Header-Content-Length bytes, then the binary data of every input whose parameters give
/// binary_data_size, in input order. JSON "data" may be flat or nested (row-major); BYTES elements in JSON are
/// base64 strings (encoded images are not text). Everything malformed is a 400 refusal naming what to fix.
/// </summary>
public static class OipJson
{
    public const string HeaderLength = "Inference-Header-Content-Length";

    public static OipInferRequest ParseRequest(byte[] body, int? headerLength, string modelName, string? version, long maxElements)
    {
        if (headerLength is { } h && (h < 0 || h > body.Length))
            throw RefusedException.BadInput($"{HeaderLength} is {h}, but the body has {body.Length:N0} bytes.");
        var json = body.AsMemory(0, headerLength ?? body.Length);
        var binary = body.AsMemory(headerLength ?? body.Length);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw RefusedException.BadInput($"The request is not valid JSON{(headerLength is null ? "" : $" in its first {headerLength} bytes ({HeaderLength})")}: {e.Message}");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw RefusedException.BadInput("The request must be a JSON object with \"inputs\".");
            var id = Optional(root, "id", JsonValueKind.String)?.GetString();
            var binaryOutputs = Optional(root, "parameters", JsonValueKind.Object) is { } p && Bool(p, "binary_data_output");
            if (Optional(root, "inputs", JsonValueKind.Array) is not { } inputsJson || inputsJson.GetArrayLength() == 0)
                throw RefusedException.BadInput("The request has no \"inputs\" array, or it is empty.");
            var offset = 0;
            var inputs = new List<OipInput>();
            foreach (var input in inputsJson.EnumerateArray()) inputs.Add(ParseInput(input, binary.Span, ref offset, maxElements));
            if (offset != binary.Length)
                throw RefusedException.BadInput($"The body has {binary.Length - offset:N0} bytes after the JSON header that no input's binary_data_size accounts for.");
            var outputs = new List<OipRequestedOutput>();
            if (Optional(root, "outputs", JsonValueKind.Array) is { } outputsJson)
                foreach (var o in outputsJson.EnumerateArray())
                {
                    if (o.ValueKind != JsonValueKind.Object) throw RefusedException.BadInput("Each of \"outputs\" must be an object with a \"name\".");
                    var name = Required(o, "name", JsonValueKind.String, "An output").GetString()!;
                    var parameters = Optional(o, "parameters", JsonValueKind.Object);
                    int? k = null;
                    if (parameters is { } op && Optional(op, "classification", JsonValueKind.Number) is { } c)
                        k = c.TryGetInt32(out var kk) ? kk : throw RefusedException.BadInput($"Output '{name}': classification must be an integer.");
                    outputs.Add(new OipRequestedOutput(name, parameters is { } bp && Bool(bp, "binary_data"), k));
                }
            return new OipInferRequest(modelName, version, id, inputs, outputs, binaryOutputs);
        }
    }

    static OipInput ParseInput(JsonElement input, ReadOnlySpan<byte> binary, ref int offset, long maxElements)
    {
        if (input.ValueKind != JsonValueKind.Object) throw RefusedException.BadInput("Each of \"inputs\" must be an object.");
        var name = Required(input, "name", JsonValueKind.String, "An input").GetString()!;
        var datatype = Required(input, "datatype", JsonValueKind.String, $"Input '{name}'").GetString()!;
        var shapeJson = Required(input, "shape", JsonValueKind.Array, $"Input '{name}'");
        var shape = new long[shapeJson.GetArrayLength()];
        var i = 0;
        foreach (var d in shapeJson.EnumerateArray())
            shape[i++] = d.ValueKind == JsonValueKind.Number && d.TryGetInt64(out var v) ? v
                : throw RefusedException.BadInput($"Input '{name}': every dimension of \"shape\" must be an integer.");
        if (datatype is not (Datatypes.Fp32 or Datatypes.Bytes))
            throw RefusedException.BadInput($"Input '{name}' has datatype {datatype}; this server takes FP32 and BYTES inputs.");
        var count = Tensors.ElementCount(name, shape, maxElements);
        if (Optional(input, "parameters", JsonValueKind.Object) is { } p && Optional(p, "binary_data_size", JsonValueKind.Number) is { } sizeJson)
        {
            if (input.TryGetProperty("data", out _))
                throw RefusedException.BadInput($"Input '{name}' gives both \"data\" and binary_data_size; send one.");
            if (!sizeJson.TryGetInt64(out var size) || size < 0 || size > binary.Length - offset)
                throw RefusedException.BadInput($"Input '{name}' has binary_data_size {sizeJson}, but {binary.Length - offset:N0} bytes of binary data are left.");
            var raw = binary.Slice(offset, (int)size);
            offset += (int)size;
            return datatype == Datatypes.Fp32
                ? new OipInput(name, datatype, shape, Tensors.Floats(name, raw, count), null)
                : new OipInput(name, datatype, shape, null, Tensors.Elements(name, raw, count));
        }
        var data = Required(input, "data", JsonValueKind.Array, $"Input '{name}'");
        if (datatype == Datatypes.Fp32)
        {
            var floats = new List<float>();
            Flatten(data, e => floats.Add(e.ValueKind == JsonValueKind.Number && e.TryGetSingle(out var f) && float.IsFinite(f) ? f
                : throw RefusedException.BadInput($"Input '{name}': FP32 data holds {e.ValueKind}; send finite numbers.")), count, name);
            return new OipInput(name, datatype, shape, [.. floats], null);
        }
        var elements = new List<byte[]>();
        Flatten(data, e =>
        {
            if (e.ValueKind != JsonValueKind.String)
                throw RefusedException.BadInput($"Input '{name}': BYTES data holds {e.ValueKind}; send base64 strings (or use binary data).");
            try
            {
                elements.Add(e.GetBytesFromBase64());
            }
            catch (FormatException)
            {
                throw RefusedException.BadInput($"Input '{name}': element {elements.Count} is not base64. Encode each image in base64, or send it as binary data.");
            }
        }, count, name);
        return new OipInput(name, datatype, shape, null, [.. elements]);
    }

    /// <summary>Visits the leaves of flat or nested arrays in row-major order; a 400 when their number is not <paramref name="count"/>.</summary>
    static void Flatten(JsonElement data, Action<JsonElement> leaf, long count, string name)
    {
        long seen = 0;
        void Visit(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Array)
            {
                foreach (var x in e.EnumerateArray()) Visit(x);
                return;
            }
            if (++seen > count) throw Mismatch();
            leaf(e);
        }
        RefusedException Mismatch() => RefusedException.BadInput($"Input '{name}': \"data\" holds {(seen > count ? "more than " + count : seen.ToString())} " +
            $"elements; its shape says {count}.");
        Visit(data);
        if (seen != count) throw Mismatch();
    }

    static JsonElement? Optional(JsonElement o, string property, JsonValueKind kind)
    {
        if (!o.TryGetProperty(property, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != kind && !(kind == JsonValueKind.True && v.ValueKind == JsonValueKind.False))
            throw RefusedException.BadInput($"\"{property}\" must be {Article(kind)}, not {v.ValueKind}.");
        return v;
    }

    static JsonElement Required(JsonElement o, string property, JsonValueKind kind, string who) =>
        Optional(o, property, kind) ?? throw RefusedException.BadInput($"{who} has no \"{property}\".");

    static bool Bool(JsonElement parameters, string property) =>
        Optional(parameters, property, JsonValueKind.True) is { } v && v.GetBoolean();

    static string Article(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        _ => "true or false",
    };

    /// <summary>The response body: JSON alone, or (when an output is binary) the JSON header followed by the binary
    /// outputs in order; <paramref name="headerLength"/> is then the JSON's length for Inference-Header-Content-Length.</summary>
    public static byte[] WriteResponse(OipInferResult result, out int? headerLength)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var binary = new List<byte[]>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("model_name", result.ModelName);
            w.WriteString("model_version", result.ModelVersion);
            if (result.Id is { } id) w.WriteString("id", id);
            w.WriteStartArray("outputs");
            foreach (var o in result.Outputs)
            {
                w.WriteStartObject();
                w.WriteString("name", o.Name);
                w.WriteString("datatype", o.Datatype);
                w.WriteStartArray("shape");
                foreach (var d in o.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                if (o.Binary)
                {
                    var raw = o.Raw();
                    binary.Add(raw);
                    w.WriteStartObject("parameters");
                    w.WriteNumber("binary_data_size", raw.Length);
                    w.WriteEndObject();
                }
                else
                {
                    w.WriteStartArray("data");
                    if (o.Floats is { } f) foreach (var x in f) w.WriteNumberValue(x);   // shortest round-trip form
                    else foreach (var s in o.Strings!) w.WriteStringValue(s);
                    w.WriteEndArray();
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        headerLength = binary.Count > 0 ? buffer.WrittenCount : null;
        if (binary.Count == 0) return buffer.WrittenSpan.ToArray();
        var body = new byte[buffer.WrittenCount + binary.Sum(b => b.Length)];
        buffer.WrittenSpan.CopyTo(body);
        var at = buffer.WrittenCount;
        foreach (var b in binary)
        {
            b.CopyTo(body, at);
            at += b.Length;
        }
        return body;
    }

}
