using System.Runtime.InteropServices;

namespace AlexNet.Model.Onnx;

/// <summary>
/// Builds an ONNX ModelProto (field numbers from onnx/onnx.proto) and writes it atomically: to a temporary file in
/// the same folder, flushed to disk, then renamed over the final name, so a crash never leaves a truncated model.
/// </summary>
public sealed class OnnxModelBuilder
{
    // TensorProto.DataType and AttributeProto.AttributeType values used here.
    const int Float32 = 1;
    const int AttrFloat = 1, AttrInt = 2, AttrInts = 7;

    readonly ProtoWriter _graph = new();
    readonly List<(string Key, string Value)> _metadata = [];
    int _nodes;

    public string GraphName { get; init; } = "alexnet";
    public string ProducerName { get; init; } = "AlexNet.NET";
    /// <summary>Prefix of the node names (<c>Conv_0</c>, ...): a fragment merged into another graph needs its own.</summary>
    public string NodeNamePrefix { get; init; } = "";

    public OnnxModelBuilder Input(string name, int elemType, params object[] dims) { _graph.Message(11, ValueInfo(name, elemType, dims)); return this; }
    public OnnxModelBuilder Output(string name, int elemType, params object[] dims) { _graph.Message(12, ValueInfo(name, elemType, dims)); return this; }
    /// <summary>An output of this element type whose shape is not stated (a tensor of any rank).</summary>
    public OnnxModelBuilder OutputOfAnyShape(string name, int elemType)
    {
        var type = new ProtoWriter().Message(1, new ProtoWriter().Varint(1, elemType));
        _graph.Message(12, new ProtoWriter().String(1, name).Message(2, type));
        return this;
    }
    public OnnxModelBuilder FloatInput(string name, params object[] dims) => Input(name, Float32, dims);
    public OnnxModelBuilder FloatOutput(string name, params object[] dims) => Output(name, Float32, dims);

    public OnnxModelBuilder Initializer(string name, ReadOnlySpan<float> data, params long[] dims)
    {
        var expected = dims.Aggregate(1L, (a, d) => a * d);
        if (expected != data.Length)
            throw new ArgumentException($"Initializer '{name}' has {data.Length} values but shape [{string.Join(", ", dims)}] needs {expected}.");
        var t = new ProtoWriter();
        foreach (var d in dims) t.Varint(1, d);
        t.Varint(2, Float32).String(8, name).Bytes(9, MemoryMarshal.AsBytes(data));   // raw_data is little-endian
        _graph.Message(5, t);
        return this;
    }

    /// <summary>Adds a node. Attributes: int, long, float, long[] or int[] values.</summary>
    public OnnxModelBuilder Node(string opType, string[] inputs, string[] outputs, params (string Name, object Value)[] attributes)
    {
        var n = new ProtoWriter();
        foreach (var i in inputs) n.String(1, i);
        foreach (var o in outputs) n.String(2, o);
        n.String(3, $"{NodeNamePrefix}{opType}_{_nodes++}").String(4, opType);
        foreach (var (name, value) in attributes)
        {
            var a = new ProtoWriter().String(1, name);
            switch (value)
            {
                case int i: a.Varint(3, i).Varint(20, AttrInt); break;
                case long l: a.Varint(3, l).Varint(20, AttrInt); break;
                case float f: a.Float(2, f).Varint(20, AttrFloat); break;
                case double d: a.Float(2, (float)d).Varint(20, AttrFloat); break;
                case long[] ls: foreach (var l in ls) a.Varint(8, l); a.Varint(20, AttrInts); break;
                case int[] iss: foreach (var i in iss) a.Varint(8, i); a.Varint(20, AttrInts); break;
                default: throw new ArgumentException($"Unsupported attribute type {value.GetType()} for '{name}'.");
            }
            n.Message(5, a);
        }
        _graph.Message(1, n);
        return this;
    }

    public OnnxModelBuilder Metadata(string key, string value) { _metadata.Add((key, value)); return this; }

    /// <summary>The metadata added so far, in order.</summary>
    public IReadOnlyList<(string Key, string Value)> MetadataEntries => _metadata;

    /// <summary>The graph's fields written so far (inputs, outputs, initialisers, nodes), without the GraphProto header:
    /// a fragment that <see cref="OnnxFileEditor"/> appends to an existing graph.</summary>
    public byte[] GraphFields() => _graph.ToArray();

    /// <summary>One metadata_props entry (StringStringEntryProto) as a ModelProto field.</summary>
    public static byte[] MetadataField(string key, string value)
    {
        var w = new ProtoWriter().Message(14, new ProtoWriter().String(1, key).String(2, value));
        return w.ToArray();
    }

    public byte[] ToBytes()
    {
        using var ms = new MemoryStream();
        WriteTo(ms);
        return ms.ToArray();
    }

    /// <summary>Streams the model: header fields, then the graph (whose bytes are never copied whole), then metadata.</summary>
    public void WriteTo(Stream stream)
    {
        new ProtoWriter()
            .Varint(1, OnnxContract.IrVersion)
            .String(2, ProducerName)
            .String(3, typeof(OnnxModelBuilder).Assembly.GetName().Version?.ToString() ?? "0")
            .Message(8, new ProtoWriter().String(1, "").Varint(2, OnnxContract.Opset))
            .CopyTo(stream);
        var name = new ProtoWriter().String(2, GraphName);
        ProtoWriter.WriteHeader(stream, field: 7, length: name.Length + _graph.Length);
        name.CopyTo(stream);
        _graph.CopyTo(stream);
        var meta = new ProtoWriter();
        foreach (var (k, v) in _metadata) meta.Message(14, new ProtoWriter().String(1, k).String(2, v));
        meta.CopyTo(stream);
    }

    /// <summary>Writes to <paramref name="path"/> atomically (temp file, fsync, rename).</summary>
    public void Save(string path) => AtomicFile.Write(path, WriteTo);

    static ProtoWriter ValueInfo(string name, int elemType, object[] dims)
    {
        var shape = new ProtoWriter();
        foreach (var d in dims)
        {
            var dim = d switch
            {
                string param => new ProtoWriter().String(2, param),
                int v => new ProtoWriter().Varint(1, v),
                long v => new ProtoWriter().Varint(1, v),
                _ => throw new ArgumentException($"Dimension {d} must be int, long or a symbolic name."),
            };
            shape.Message(1, dim);
        }
        var tensorType = new ProtoWriter().Varint(1, elemType).Message(2, shape);
        var type = new ProtoWriter().Message(1, tensorType);
        return new ProtoWriter().String(1, name).Message(2, type);
    }
}
