using System.Runtime.InteropServices;

namespace AlexNet.Model.Onnx.Quantization;

/// <summary>A tensor's calibrated range.</summary>
public readonly record struct TensorRange(float Min, float Max);

/// <summary>uint8 activation parameters (asymmetric, per tensor) from a range that is widened to hold 0, so that 0
/// (padding, ReLU's floor) is exact. As ONNX Runtime's quantizer computes them.</summary>
public readonly record struct ActivationParams(float Scale, byte ZeroPoint)
{
    public static ActivationParams From(TensorRange r)
    {
        var (lo, hi) = (Math.Min(r.Min, 0f), Math.Max(r.Max, 0f));
        if (!(hi - lo > 0f) || !float.IsFinite(hi - lo)) return new(1f, 0);
        var scale = (hi - lo) / 255f;
        return new(scale, (byte)Math.Clamp(MathF.Round(-lo / scale, MidpointRounding.ToEven), 0f, 255f));
    }
}

/// <summary>
/// Writes the quantized model a <see cref="QdqPlan"/> describes, in ONNX's QDQ form: each activation a quantized op
/// reads goes through QuantizeLinear (uint8, per tensor) and DequantizeLinear; each weight is stored as int8 per
/// output channel, symmetric (zero point 0, scale max|w| / 127), behind a DequantizeLinear; each bias as int32 with
/// scale x_scale * w_scale (what ONNX Runtime needs to fuse DQ -> Conv -> Q into QLinearConv, and DQ -> Gemm into
/// QGemm). Every other node, initializer, input, output and metadata entry is copied unchanged, and tensors keep their
/// names: a tensor that is now dequantized is written under its old name, so whatever else reads it (the
/// out-of-domain taps) still finds it. The output depends only on the model, the plan and the ranges: the same inputs
/// give the same bytes.
/// </summary>
public static class QdqWriter
{
    public const string QuantizedSuffix = ".quantized", DequantizedSuffix = ".dequantized";

    /// <summary>
    /// Weights use 7 of their 8 bits (-63..63) unless told otherwise. On x86 without VNNI (AVX2, AVX-512 before VNNI),
    /// ONNX Runtime multiplies uint8 activations by int8 weights with <c>vpmaddubsw</c>, which adds two products into a
    /// saturating int16: 255 x 127 x 2 overflows it, 255 x 63 x 2 does not. Measured on the demo model on such a host
    /// (docs/benchmarks.md): 8-bit weights agreed with float on 99.1% of held-out images, 7-bit on 99.4-99.8%. ONNX
    /// Runtime's own quantizer calls this <c>reduce_range</c>.
    /// </summary>
    public const int ReducedWeightBits = 7;

    public static byte[] Write(OnnxGraphDocument doc, QdqPlan plan, IReadOnlyDictionary<string, TensorRange> ranges,
        IReadOnlyList<(string Key, string Value)> metadata, int weightBits = ReducedWeightBits)
    {
        if (weightBits is < 2 or > 8) throw new ArgumentOutOfRangeException(nameof(weightBits), $"{weightBits} bits: give 2 to 8.");
        if (doc.DefaultOpset < 13)
            throw new InvalidDataException($"The model imports opset {doc.DefaultOpset}; per-channel QuantizeLinear/DequantizeLinear need opset 13 or later.");
        var activation = new Dictionary<string, ActivationParams>(StringComparer.Ordinal);
        ActivationParams Params(string source) =>
            activation.TryGetValue(source, out var p) ? p
            : activation[source] = ActivationParams.From(ranges.TryGetValue(source, out var r) ? r
                : throw new ArgumentException($"No calibrated range for tensor '{source}'."));

        var nodes = new List<OnnxNode>();
        var newInitializers = new Dictionary<string, List<byte[]>>(StringComparer.Ordinal);   // replaces a float weight
        var scalars = new List<byte[]>();
        var scalarsWritten = new HashSet<string>(StringComparer.Ordinal);
        var pairsWritten = new HashSet<string>(StringComparer.Ordinal);
        var skipped = plan.FoldedRelu.Values.ToHashSet();

        void ScalarParams(string source)
        {
            if (!scalarsWritten.Add(source)) return;
            var p = Params(source);
            scalars.Add(OnnxGraphDocument.InitializerField($"{source}.scale", OnnxTypes.Float, MemoryMarshal.AsBytes([p.Scale])));
            scalars.Add(OnnxGraphDocument.InitializerField($"{source}.zero_point", OnnxTypes.UInt8, [p.ZeroPoint]));
        }
        void Pair(string from, string quantized, string to, string source)
        {
            ScalarParams(source);
            nodes.Add(Node("QuantizeLinear", [from, $"{source}.scale", $"{source}.zero_point"], [quantized], $"{to}/QuantizeLinear"));
            nodes.Add(Node("DequantizeLinear", [quantized, $"{source}.scale", $"{source}.zero_point"], [to], $"{to}/DequantizeLinear"));
        }

        for (var i = 0; i < doc.Nodes.Count; i++)
        {
            if (skipped.Contains(i)) continue;
            var n = doc.Nodes[i];
            if (plan.Targets.Contains(i))
            {
                var x = n.Inputs[0];
                string xSource;
                if (plan.Requantized.TryGetValue(x, out var rq)) xSource = rq;
                else
                {
                    xSource = plan.InputPairs[x];
                    if (pairsWritten.Add(x)) Pair(x, x + QuantizedSuffix, x + DequantizedSuffix, xSource);
                    x += DequantizedSuffix;
                }
                var inputs = (string[])n.Inputs.Clone();
                inputs[0] = x;
                var w = doc.Initializers[n.Inputs[1]];
                var axis = n.OpType == "Gemm" && (n.IntAttribute("transB") ?? 0) == 0 ? 1 : 0;
                var (wq, wScale) = QuantizeWeight(w, axis, weightBits);
                var channels = w.Dims[axis];
                var list = newInitializers.TryGetValue(w.Name, out var l) ? l : newInitializers[w.Name] = [];
                if (list.Count == 0)
                {
                    list.Add(OnnxGraphDocument.InitializerField(w.Name + QuantizedSuffix, OnnxTypes.Int8, MemoryMarshal.AsBytes(wq.AsSpan()), w.Dims));
                    list.Add(OnnxGraphDocument.InitializerField($"{w.Name}.scale", OnnxTypes.Float, MemoryMarshal.AsBytes(wScale.AsSpan()), channels));
                    list.Add(OnnxGraphDocument.InitializerField($"{w.Name}.zero_point", OnnxTypes.Int8, new byte[channels], channels));
                    nodes.Add(Node("DequantizeLinear", [w.Name + QuantizedSuffix, $"{w.Name}.scale", $"{w.Name}.zero_point"],
                        [w.Name + DequantizedSuffix], $"{w.Name}/DequantizeLinear", ("axis", axis)));
                }
                inputs[1] = w.Name + DequantizedSuffix;
                if (n.Inputs.Length > 2 && doc.Initializers.TryGetValue(n.Inputs[2], out var b) && b.DataType == OnnxTypes.Float
                    && !b.External && b.Dims.Length == 1 && b.Dims[0] == channels)
                {
                    var name = $"{b.Name}.{n.Outputs[0]}";   // the bias scale depends on this node's input scale
                    var xs = Params(xSource).Scale;
                    var bScale = wScale.Select(s => xs * s).ToArray();
                    var bq = b.Floats().Select((v, c) => (int)Math.Clamp(Math.Round(v / (double)bScale[c], MidpointRounding.ToEven), int.MinValue, int.MaxValue)).ToArray();
                    list.Add(OnnxGraphDocument.InitializerField(name + QuantizedSuffix, OnnxTypes.Int32, MemoryMarshal.AsBytes(bq.AsSpan()), channels));
                    list.Add(OnnxGraphDocument.InitializerField($"{name}.scale", OnnxTypes.Float, MemoryMarshal.AsBytes(bScale.AsSpan()), channels));
                    nodes.Add(Node("DequantizeLinear", [name + QuantizedSuffix, $"{name}.scale"], [name + DequantizedSuffix],
                        $"{name}/DequantizeLinear", ("axis", 0)));
                    inputs[2] = name + DequantizedSuffix;
                    newInitializers.TryAdd(b.Name, []);
                }
                ReadOnlyMemory<byte> rest = n.OpType == "Gemm" && !n.HasAttribute("beta")
                    ? (byte[])[.. n.Rest.ToArray(), .. Attribute("beta", 1f)]   // ONNX Runtime's QGemm fusion reads beta
                    : n.Rest;
                var outputs = (string[])n.Outputs.Clone();
                if (n.OpType == "Conv")
                {
                    var y = plan.FoldedRelu.TryGetValue(i, out var relu) ? doc.Nodes[relu].Outputs[0] : n.Outputs[0];
                    outputs[0] = y + ".float";
                    nodes.Add(n with { Inputs = inputs, Outputs = outputs, Rest = rest });
                    Pair(outputs[0], y + QuantizedSuffix, y, plan.Requantized[y]);
                }
                else nodes.Add(n with { Inputs = inputs, Rest = rest });
                continue;
            }
            if (n.OpType == "MaxPool" && n.Outputs.Length == 1 && plan.Requantized.TryGetValue(n.Outputs[0], out var src) && n.Domain == "")
            {
                var y = n.Outputs[0];
                nodes.Add(n with { Outputs = [y + ".float"] });
                Pair(y + ".float", y + QuantizedSuffix, y, src);
                continue;
            }
            nodes.Add(n);
        }

        // A float weight or bias no other node reads is replaced, in place, by its quantized form.
        var stillRead = nodes.SelectMany(n => n.Inputs).ToHashSet(StringComparer.Ordinal);
        var initializers = new List<ReadOnlyMemory<byte>>();
        foreach (var t in doc.Initializers.Values)
        {
            if (!newInitializers.TryGetValue(t.Name, out var replacement) || stillRead.Contains(t.Name)) initializers.Add(t.Field.Raw);
            if (replacement is not null) initializers.AddRange(replacement.Select(r => (ReadOnlyMemory<byte>)r));
        }
        initializers.AddRange(scalars.Select(s => (ReadOnlyMemory<byte>)s));
        return doc.Write(nodes, initializers, metadata);
    }

    /// <summary>int8 per output channel along <paramref name="axis"/>, symmetric: q = round(w / s), s = max|w| / qmax, qmax
    /// 127 for 8 bits, 63 for 7.</summary>
    public static (sbyte[] Values, float[] Scales) QuantizeWeight(OnnxInitializer w, int axis, int weightBits)
    {
        var values = w.Floats();
        var channels = (int)w.Dims[axis];
        var inner = (int)w.Dims.Skip(axis + 1).Aggregate(1L, (a, d) => a * d);   // values between two channels' runs
        var scales = new float[channels];
        for (var i = 0; i < values.Length; i++)
        {
            var c = i / inner % channels;
            scales[c] = Math.Max(scales[c], Math.Abs(values[i]));
        }
        var qmax = (1 << (weightBits - 1)) - 1f;
        for (var c = 0; c < channels; c++) scales[c] = scales[c] > 0f ? scales[c] / qmax : 1f;
        var q = new sbyte[values.Length];
        for (var i = 0; i < values.Length; i++)
            q[i] = (sbyte)Math.Clamp(MathF.Round(values[i] / scales[i / inner % channels], MidpointRounding.ToEven), -qmax, qmax);
        return (q, scales);
    }

    static OnnxNode Node(string op, string[] inputs, string[] outputs, string name, params (string Name, long Value)[] attributes)
    {
        var rest = new ProtoWriter().String(3, name).String(4, op);
        foreach (var (a, v) in attributes) rest.Message(5, new ProtoWriter().String(1, a).Varint(3, v).Varint(20, 2));   // 2 = INT
        return new OnnxNode(op, "", inputs, outputs, rest.ToArray());
    }

    static byte[] Attribute(string name, float value) =>
        new ProtoWriter().Message(5, new ProtoWriter().String(1, name).Float(2, value).Varint(20, 1)).ToArray();   // 1 = FLOAT
}
