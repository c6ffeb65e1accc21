using System.Buffers.Binary;

namespace AlexNet.Model.Onnx;

/// <summary>One NodeProto: its inputs, outputs and operator, and every other field (name, attributes, domain) as it lay
/// in the file, so a rewrite that only rewires a node copies the rest byte for byte.</summary>
public sealed record OnnxNode(string OpType, string Domain, string[] Inputs, string[] Outputs, ReadOnlyMemory<byte> Rest)
{
    /// <summary>An int attribute's value (AttributeProto: 1 = name, 3 = i), or null when the node does not set it.</summary>
    public long? IntAttribute(string name)
    {
        foreach (var f in ProtoReader.Fields(Rest).Where(f => f.Number == 5 && f.WireType == 2))
        {
            if (ProtoReader.Strings(f.Body, 1).FirstOrDefault() != name) continue;
            foreach (var a in ProtoReader.Fields(f.Body).Where(a => a.Number == 3 && a.WireType == 0))
                return (long)ProtoReader.Varint(a.Raw[1..].Span);   // the tag of field 3 is one byte
            return 0;
        }
        return null;
    }

    /// <summary>Whether the node sets attribute <paramref name="name"/> at all.</summary>
    public bool HasAttribute(string name) =>
        ProtoReader.Fields(Rest).Any(f => f.Number == 5 && f.WireType == 2 && ProtoReader.Strings(f.Body, 1).FirstOrDefault() == name);

    /// <summary>The NodeProto's bytes: inputs (1) and outputs (2) as now, then the other fields unchanged.</summary>
    public byte[] ToBytes()
    {
        var w = new ProtoWriter();
        foreach (var i in Inputs) w.String(1, i);
        foreach (var o in Outputs) w.String(2, o);
        var head = w.ToArray();
        var bytes = new byte[head.Length + Rest.Length];
        head.CopyTo(bytes, 0);
        Rest.Span.CopyTo(bytes.AsSpan(head.Length));
        return bytes;
    }
}

/// <summary>One initializer (TensorProto): name, element type, dims and its whole field, read lazily.</summary>
public sealed record OnnxInitializer(string Name, int DataType, long[] Dims, ProtoField Field, bool External)
{
    public long Count => Dims.Aggregate(1L, (a, d) => a * d);

    /// <summary>The values of a float tensor stored in the file (raw_data or packed float_data).</summary>
    public float[] Floats()
    {
        if (DataType != OnnxTypes.Float) throw new InvalidDataException($"Initializer '{Name}' is not a float tensor (type {DataType}).");
        if (External) throw new InvalidDataException($"Initializer '{Name}' is stored outside the file (external data), which is not read.");
        foreach (var f in ProtoReader.Fields(Field.Body).Where(f => f.WireType == 2 && f.Number is 4 or 9))
        {
            if (f.Body.Length != Count * 4)
                throw new InvalidDataException($"Initializer '{Name}' holds {f.Body.Length} bytes for [{string.Join(", ", Dims)}] floats.");
            var values = new float[Count];
            for (var i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(f.Body.Span[(i * 4)..]);
            return values;
        }
        if (Count == 0) return [];
        throw new InvalidDataException($"Initializer '{Name}' stores its values in a form not read here (neither raw_data nor packed float_data).");
    }
}

/// <summary>ONNX element types used by the quantizer (TensorProto.DataType).</summary>
public static class OnnxTypes
{
    public const int Float = 1, UInt8 = 2, Int8 = 3, Int32 = 6;
}

/// <summary>
/// An ONNX model opened for a rewrite of its graph: the nodes in order (<see cref="OnnxNode"/>), the initializers by
/// name, and everything else (the model's header, producer, opsets and metadata; the graph's name, inputs, outputs and
/// value_info) kept as raw fields and written back unchanged. Field numbers from onnx/onnx.proto: ModelProto 7 = graph,
/// 8 = opset_import, 14 = metadata_props; GraphProto 1 = node, 5 = initializer, 12 = output; NodeProto 1 = input,
/// 2 = output, 4 = op_type, 7 = domain; TensorProto 1 = dims, 2 = data_type, 8 = name, 14 = data_location.
/// </summary>
public sealed class OnnxGraphDocument
{
    readonly List<ProtoField> _modelFields = [];
    readonly List<ProtoField> _graphOther = [];

    public List<OnnxNode> Nodes { get; } = [];
    public Dictionary<string, OnnxInitializer> Initializers { get; } = new(StringComparer.Ordinal);
    /// <summary>The graph's output names, in order.</summary>
    public List<string> Outputs { get; } = [];

    public static OnnxGraphDocument Parse(ReadOnlyMemory<byte> model)
    {
        var doc = new OnnxGraphDocument();
        var graphs = 0;
        foreach (var field in ProtoReader.Fields(model))
        {
            if (field.Number != 7 || field.WireType != 2) { doc._modelFields.Add(field); continue; }
            if (graphs++ > 0) throw new InvalidDataException("The file has more than one graph field.");
            foreach (var f in ProtoReader.Fields(field.Body))
            {
                if (f.WireType == 2 && f.Number == 1) doc.Nodes.Add(ReadNode(f.Body));
                else if (f.WireType == 2 && f.Number == 5)
                {
                    var t = ReadInitializer(f);
                    if (!doc.Initializers.TryAdd(t.Name, t)) throw new InvalidDataException($"Two initializers are named '{t.Name}'.");
                }
                else
                {
                    if (f.WireType == 2 && f.Number == 12) doc.Outputs.Add(ProtoReader.Strings(f.Body, 1).FirstOrDefault() ?? "");
                    doc._graphOther.Add(f);
                }
            }
        }
        if (graphs == 0) throw new InvalidDataException("Not an ONNX model: no graph field.");
        return doc;
    }

    /// <summary>The version of the default (ai.onnx) operator set the model imports.</summary>
    public long DefaultOpset =>
        _modelFields.Where(f => f.Number == 8 && f.WireType == 2)
            .Where(f => (ProtoReader.Strings(f.Body, 1).FirstOrDefault() ?? "") is "" or "ai.onnx")
            .Select(f => ProtoReader.Fields(f.Body).Where(v => v.Number == 2 && v.WireType == 0).Select(v => (long)ProtoReader.Varint(v.Raw[1..].Span)).FirstOrDefault())
            .DefaultIfEmpty(0L).Max();

    /// <summary>The model with <paramref name="nodes"/> and <paramref name="initializers"/> as its graph's (in that
    /// order), every other field as read, the metadata keys in <paramref name="metadata"/> set (replacing any with the
    /// same key) and appended in the order given.</summary>
    public byte[] Write(IEnumerable<OnnxNode> nodes, IEnumerable<ReadOnlyMemory<byte>> initializers, IReadOnlyList<(string Key, string Value)> metadata)
    {
        var replaced = metadata.Select(m => m.Key).ToHashSet(StringComparer.Ordinal);
        using var graph = new MemoryStream();
        foreach (var f in _graphOther.Where(f => f.Number != 12 && f.Number != 13)) graph.Write(f.Raw.Span);   // name, inputs, doc
        foreach (var n in nodes)
        {
            var body = n.ToBytes();
            ProtoWriter.WriteHeader(graph, 1, body.Length);
            graph.Write(body);
        }
        foreach (var t in initializers) graph.Write(t.Span);
        foreach (var f in _graphOther.Where(f => f.Number is 12 or 13)) graph.Write(f.Raw.Span);                // outputs, value_info
        using var output = new MemoryStream((int)Math.Min(int.MaxValue, graph.Length + 65536));
        foreach (var f in _modelFields)
        {
            if (f.Number == 14 && f.WireType == 2 && ProtoReader.Strings(f.Body, 1).FirstOrDefault() is { } key && replaced.Contains(key)) continue;
            output.Write(f.Raw.Span);
        }
        ProtoWriter.WriteHeader(output, 7, graph.Length);
        graph.Position = 0;
        graph.CopyTo(output);
        foreach (var (k, v) in metadata) output.Write(OnnxModelBuilder.MetadataField(k, v));
        return output.ToArray();
    }

    /// <summary>An initializer field (GraphProto field 5) holding <paramref name="data"/>'s bytes as raw_data.</summary>
    public static byte[] InitializerField(string name, int dataType, ReadOnlySpan<byte> data, params long[] dims)
    {
        var t = new ProtoWriter();
        foreach (var d in dims) t.Varint(1, d);
        t.Varint(2, dataType).String(8, name).Bytes(9, data);
        return new ProtoWriter().Message(5, t).ToArray();
    }

    static OnnxNode ReadNode(ReadOnlyMemory<byte> body)
    {
        var (inputs, outputs) = (new List<string>(), new List<string>());
        string op = "", domain = "";
        using var rest = new MemoryStream();
        foreach (var f in ProtoReader.Fields(body))
        {
            if (f.WireType == 2 && f.Number == 1) { inputs.Add(System.Text.Encoding.UTF8.GetString(f.Body.Span)); continue; }
            if (f.WireType == 2 && f.Number == 2) { outputs.Add(System.Text.Encoding.UTF8.GetString(f.Body.Span)); continue; }
            if (f.WireType == 2 && f.Number == 4) op = System.Text.Encoding.UTF8.GetString(f.Body.Span);
            if (f.WireType == 2 && f.Number == 7) domain = System.Text.Encoding.UTF8.GetString(f.Body.Span);
            rest.Write(f.Raw.Span);
        }
        return new OnnxNode(op, domain, [.. inputs], [.. outputs], rest.ToArray());
    }

    static OnnxInitializer ReadInitializer(ProtoField field)
    {
        var dims = new List<long>();
        string? name = null;
        var (type, external) = (0, false);
        foreach (var f in ProtoReader.Fields(field.Body))
        {
            switch (f.Number, f.WireType)
            {
                case (1, 0): dims.Add((long)ProtoReader.Varint(f.Raw[1..].Span)); break;
                case (1, 2): dims.AddRange(ProtoReader.PackedVarints(f.Body.Span).Select(v => (long)v)); break;
                case (2, 0): type = (int)ProtoReader.Varint(f.Raw[1..].Span); break;
                case (8, 2): name = System.Text.Encoding.UTF8.GetString(f.Body.Span); break;
                case (14, 0): external = ProtoReader.Varint(f.Raw[1..].Span) == 1; break;
            }
        }
        return new OnnxInitializer(name ?? throw new InvalidDataException("An initializer has no name."), type, [.. dims], field, external);
    }
}
