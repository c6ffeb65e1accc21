using System.Buffers.Binary;
using System.Text;

namespace AlexNet.Model.Onnx;

/// <summary>A float weight tensor read from an ONNX file: <see cref="Dims"/> (for a Conv weight (out, in / group, kh, kw)) and
/// its values in row-major order.</summary>
public sealed record OnnxWeight(string Name, long[] Dims, float[] Values);

/// <summary>
/// Reads the first layer's convolution weights from an ONNX file, which ONNX Runtime does not expose: the Conv nodes
/// whose data input comes from no other Conv (both towers' conv1 in our two-tower export, conv1 in torchvision's and
/// the Model Zoo's), and their weight initializers. Just enough protobuf to walk ModelProto -> graph -> node and
/// initializer; large fields (the other weights) are skipped by seeking, never read. In an int8 file (alexnet-train quantize)
/// the weight is an int8 initializer behind a DequantizeLinear: it is read and multiplied by its scales.
/// <para>The file is the operator's, but is read as if hostile: every length is checked against what is left of its
/// message, nesting is fixed (three levels), and a weight is read only when it is a float tensor of at most
/// <see cref="MaxWeightValues"/> values stored in the file. Anything else gives null (no picture), or
/// <see cref="InvalidDataException"/> for a file that is not well-formed protobuf.</para>
/// </summary>
public static class OnnxWeightReader
{
    /// <summary>Largest first-layer weight drawn: 1,024 kernels of 16 channels of 32x32 is 16 M values (64 MB).</summary>
    public const long MaxWeightValues = 1L << 24;
    const int MaxNodes = 1_000_000, MaxNameBytes = 4096;

    /// <summary>The first-layer Conv weights in node order, or an empty list when the graph does not start with a Conv
    /// (or its weights are not float initializers in the file).</summary>
    public static IReadOnlyList<OnnxWeight> FirstConvWeights(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess);
        var reader = new Reader(file);
        var nodes = new List<(string Op, string[] Inputs, string[] Outputs)>();
        var initializers = new Dictionary<string, (long Offset, long Length, int Kind, long[] Dims, int DataType)>(StringComparer.Ordinal);
        // ModelProto: 7 = graph.
        foreach (var (field, wire, start, length) in reader.Fields(0, file.Length))
        {
            if (field != 7 || wire != 2) continue;
            // GraphProto: 1 = node, 5 = initializer.
            foreach (var (gf, gw, gs, gl) in reader.Fields(start, start + length))
            {
                if (gw != 2) continue;
                if (gf == 1)
                {
                    if (nodes.Count >= MaxNodes) throw new InvalidDataException($"{path}: more than {MaxNodes} nodes.");
                    nodes.Add(ReadNode(reader, gs, gl));
                }
                else if (gf == 5 && ReadInitializer(reader, gs, gl) is { } init)
                    initializers.TryAdd(init.Name, (init.Offset, init.Length, init.Kind, init.Dims, init.DataType));
            }
        }
        // The first layer: Convs none of whose inputs descends from a Conv. Nodes are in topological order (ONNX requires it).
        var afterConv = new HashSet<string>(StringComparer.Ordinal);
        var dequantized = new Dictionary<string, (string Quantized, string Scale)>(StringComparer.Ordinal);
        var weights = new List<OnnxWeight>();
        foreach (var (op, inputs, outputs) in nodes)
        {
            var tainted = inputs.Any(afterConv.Contains);
            if (op == "DequantizeLinear" && inputs.Length >= 2 && outputs.Length == 1) dequantized[outputs[0]] = (inputs[0], inputs[1]);
            if (op == "Conv" && !tainted && inputs.Length >= 2)
            {
                var name = inputs[1];
                float[]? scales = null;
                if (dequantized.TryGetValue(name, out var dq))   // an int8 file: the weight is int8 behind a DequantizeLinear
                {
                    if (!initializers.TryGetValue(dq.Scale, out var s) || s.DataType != 1 || s.Length > 4 * 65536) return [];
                    scales = reader.Floats(s.Offset, s.Length, s.Length / 4);
                    name = dq.Quantized;
                }
                if (!initializers.TryGetValue(name, out var w)) continue;
                if (w.DataType != (scales is null ? 1 : 3) || w.Dims.Length != 4 || w.Dims.Any(d => d <= 0)) return [];   // 1 = FLOAT, 3 = INT8
                var count = w.Dims.Aggregate(1L, (a, d) => a > MaxWeightValues ? a : a * d);
                if (count > MaxWeightValues) return [];
                var values = (scales is null ? reader.Floats(w.Offset, w.Length, count) : reader.Int8s(w.Offset, w.Length, count, w.Dims, scales))
                    ?? throw new InvalidDataException($"{path}: the weight '{name}' holds a different number of values than its dims say.");
                weights.Add(new OnnxWeight(inputs[1], w.Dims, values));
            }
            if (op == "Conv" || tainted)
                foreach (var o in outputs) afterConv.Add(o);
        }
        return weights;
    }

    static (string, string[], string[]) ReadNode(Reader reader, long start, long length)
    {
        // NodeProto: 1 = input, 2 = output, 4 = op_type.
        var inputs = new List<string>();
        var outputs = new List<string>();
        var op = "";
        foreach (var (f, w, s, l) in reader.Fields(start, start + length))
        {
            if (w != 2) continue;
            if (f == 1) inputs.Add(reader.String(s, l));
            else if (f == 2) outputs.Add(reader.String(s, l));
            else if (f == 4) op = reader.String(s, l);
        }
        return (op, [.. inputs], [.. outputs]);
    }

    /// <summary>TensorProto: 1 = dims, 2 = data_type, 4 = float_data, 8 = name, 9 = raw_data, 14 = data_location
    /// (1 = external: not in this file, so not read).</summary>
    static (string Name, long Offset, long Length, int Kind, long[] Dims, int DataType)? ReadInitializer(Reader reader, long start, long length)
    {
        var dims = new List<long>();
        string? name = null;
        int dataType = 0, kind = 0;
        long offset = 0, size = 0;
        foreach (var (f, w, s, l) in reader.Fields(start, start + length))
        {
            switch (f, w)
            {
                case (1, 0): dims.Add(l); break;                          // one varint dim (l holds a varint's value)
                case (1, 2): dims.AddRange(reader.PackedVarints(s, l)); break;
                case (2, 0): dataType = (int)l; break;
                case (4, 2): (kind, offset, size) = (4, s, l); break;     // packed float_data
                case (8, 2): name = reader.String(s, l); break;
                case (9, 2): (kind, offset, size) = (9, s, l); break;     // raw_data, little-endian
                case (14, 0) when l == 1: return null;
            }
            if (dims.Count > 8) return null;
        }
        return name is null || kind == 0 ? null : (name, offset, size, kind, [.. dims], dataType);
    }

    /// <summary>Protobuf fields over a seekable stream. For a varint field, Length is its value; for a length-delimited
    /// one, Start and Length give its body, checked to lie inside the enclosing message.</summary>
    sealed class Reader(Stream stream)
    {
        public IEnumerable<(int Field, int Wire, long Start, long Length)> Fields(long start, long end)
        {
            var at = start;
            while (at < end)
            {
                var tag = Varint(ref at, end);
                var (field, wire) = ((int)(tag >> 3), (int)(tag & 7));
                if (field <= 0) throw Bad(at);
                switch (wire)
                {
                    case 0: yield return (field, wire, at, (long)Varint(ref at, end)); break;
                    case 1: at += 8; break;
                    case 5: at += 4; break;
                    case 2:
                        var length = Varint(ref at, end);
                        if (length > (ulong)(end - at)) throw Bad(at);
                        yield return (field, wire, at, (long)length);
                        at += (long)length;
                        break;
                    default: throw Bad(at);   // groups (3, 4) are not in ONNX
                }
                if (at > end) throw Bad(at);
            }
        }

        public string String(long start, long length)
        {
            if (length > MaxNameBytes) throw new InvalidDataException($"A name of {length} bytes at byte {start} of the ONNX file.");
            return Encoding.UTF8.GetString(Read(start, (int)length));
        }

        public IEnumerable<long> PackedVarints(long start, long length)
        {
            var at = start;
            var values = new List<long>();
            while (at < start + length && values.Count <= 8) values.Add((long)Varint(ref at, start + length));
            return values;
        }

        /// <summary>The tensor's values, or null when the bytes do not hold exactly <paramref name="count"/> floats.</summary>
        public float[]? Floats(long start, long length, long count)
        {
            if (length != count * 4) return null;   // raw_data and packed float_data are both 4 bytes a value
            var bytes = Read(start, (int)length);
            var values = new float[count];
            for (var i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
            return values;
        }

        /// <summary>An int8 tensor's values times its scales (per tensor, or per channel along the axis whose length is the
        /// scales' count), or null when the bytes or the scales do not fit the dims.</summary>
        public float[]? Int8s(long start, long length, long count, long[] dims, float[]? scales)
        {
            if (length != count || scales is null || scales.Length == 0) return null;
            var axis = scales.Length == 1 ? 0 : Array.IndexOf(dims, (long)scales.Length);
            if (axis < 0) return null;
            var inner = dims.Skip(axis + 1).Aggregate(1L, (a, d) => a * d);
            var bytes = Read(start, (int)length);
            var values = new float[count];
            for (var i = 0; i < values.Length; i++) values[i] = (sbyte)bytes[i] * scales[scales.Length == 1 ? 0 : (int)(i / inner % scales.Length)];
            return values;
        }

        byte[] Read(long start, int length)
        {
            var buffer = new byte[length];
            stream.Position = start;
            stream.ReadExactly(buffer);
            return buffer;
        }

        ulong Varint(ref long at, long end)
        {
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                if (at >= end) throw Bad(at);
                stream.Position = at++;
                var b = stream.ReadByte();
                if (b < 0) throw Bad(at);
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0) return value;
            }
            throw Bad(at);
        }

        static InvalidDataException Bad(long at) => new($"The ONNX file is not well-formed protobuf near byte {at}.");
    }
}
