namespace AlexNet.Model.Onnx.Quantization;

/// <summary>
/// Which parts of a graph static quantization changes, decided from the graph alone: every Conv and Gemm whose weight
/// is a float initializer in the file (our LRN's banded 1x1 Conv, <c>*.lrn_band</c>, excepted: it sums squares whose
/// range no 8 bits hold), their float activation inputs, and each Conv's output (after its ReLU when the ReLU is the
/// Conv's only reader: a uint8 tensor with zero point 0 clamps at 0 as the ReLU does, so the ReLU goes; ONNX Runtime's
/// quantizer does the same). A MaxPool over a quantized tensor gets the same parameters on its output (the maximum of
/// values keeps their range), so ONNX Runtime runs it on uint8; Flatten and Reshape pass parameters through too.
/// Gemm outputs stay float (ONNX Runtime's QGemm writes float), so FC7's features and the logits are never rounded
/// to 8 bits.
/// </summary>
public sealed class QdqPlan
{
    /// <summary>Ops whose output has the range of their input.</summary>
    static readonly HashSet<string> RangeKeeping = ["MaxPool", "Flatten", "Reshape"];

    internal HashSet<int> Targets { get; } = [];
    /// <summary>Target Conv index -> the ReLU node folded into its output's QuantizeLinear.</summary>
    internal Dictionary<int, int> FoldedRelu { get; } = [];
    /// <summary>Tensors written by a DequantizeLinear under their own name (a Conv's or a MaxPool's output), and the
    /// tensor whose parameters they take (themselves when calibrated).</summary>
    internal Dictionary<string, string> Requantized { get; } = new(StringComparer.Ordinal);
    /// <summary>Float tensors read by a target through a new QuantizeLinear/DequantizeLinear pair (<c>{name}.dequantized</c>),
    /// and the tensor whose parameters they take.</summary>
    internal Dictionary<string, string> InputPairs { get; } = new(StringComparer.Ordinal);

    /// <summary>The tensors whose ranges calibration must measure, in graph order.</summary>
    public IReadOnlyList<string> Calibrated { get; private set; } = [];
    /// <summary>Quantized Conv and Gemm nodes.</summary>
    public int QuantizedOps => Targets.Count;

    public static QdqPlan For(OnnxGraphDocument doc)
    {
        var nodes = doc.Nodes;
        var readers = new Dictionary<string, List<int>>(StringComparer.Ordinal);
        var producer = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < nodes.Count; i++)
        {
            foreach (var t in nodes[i].Inputs.Where(t => t.Length > 0)) (readers.TryGetValue(t, out var l) ? l : readers[t] = []).Add(i);
            foreach (var t in nodes[i].Outputs) producer[t] = i;
        }
        var graphOutputs = doc.Outputs.ToHashSet(StringComparer.Ordinal);
        var plan = new QdqPlan();
        var calibrated = new List<string>();
        void Calibrate(string t) { if (!calibrated.Contains(t)) calibrated.Add(t); }
        string? ParamsOf(string t) =>
            plan.Requantized.TryGetValue(t, out var p) ? p
            : plan.InputPairs.TryGetValue(t, out var q) ? q
            : producer.TryGetValue(t, out var i) && RangeKeeping.Contains(nodes[i].OpType) && nodes[i].Domain == "" ? ParamsOf(nodes[i].Inputs[0])
            : null;

        for (var i = 0; i < nodes.Count; i++)
        {
            var n = nodes[i];
            if (n.Domain != "") continue;
            if (n.OpType == "MaxPool" && n.Outputs.Length == 1 && plan.Requantized.TryGetValue(n.Inputs[0], out var source)
                && !graphOutputs.Contains(n.Outputs[0]))
            {
                plan.Requantized[n.Outputs[0]] = source;
                continue;
            }
            if (!IsTarget(doc, n)) continue;
            plan.Targets.Add(i);
            var x = n.Inputs[0];
            if (!plan.Requantized.ContainsKey(x) && !plan.InputPairs.ContainsKey(x))
            {
                var inherited = ParamsOf(x);
                plan.InputPairs[x] = inherited ?? x;
                if (inherited is null) Calibrate(x);
            }
            if (n.OpType != "Conv") continue;
            var y = n.Outputs[0];
            if (readers.TryGetValue(y, out var r) && r.Count == 1 && nodes[r[0]] is { OpType: "Relu", Domain: "" } relu
                && !graphOutputs.Contains(y))
            {
                plan.FoldedRelu[i] = r[0];
                y = relu.Outputs[0];
            }
            plan.Requantized[y] = y;
            Calibrate(y);
        }
        plan.Calibrated = calibrated;
        return plan;
    }

    /// <summary>A Conv or Gemm that reads a float activation and a float weight stored in the file.</summary>
    static bool IsTarget(OnnxGraphDocument doc, OnnxNode n)
    {
        if (n.OpType is not ("Conv" or "Gemm") || n.Inputs.Length < 2) return false;
        if (!doc.Initializers.TryGetValue(n.Inputs[1], out var w) || w.DataType != OnnxTypes.Float || w.External) return false;
        if (w.Name.EndsWith(".lrn_band", StringComparison.Ordinal)) return false;
        if (doc.Initializers.ContainsKey(n.Inputs[0])) return false;
        return n.OpType == "Conv" ? w.Dims.Length >= 3 : w.Dims.Length == 2 && (n.IntAttribute("transA") ?? 0) == 0;
    }
}
