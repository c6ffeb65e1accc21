namespace AlexNet.Model.Onnx;

/// <summary>One field of a protobuf message as it lies in the bytes: its number, wire type, the whole field (tag
/// included, for copying it through unchanged) and, for a length-delimited field, its body.</summary>
public readonly record struct ProtoField(int Number, int WireType, ReadOnlyMemory<byte> Raw, ReadOnlyMemory<byte> Body);

/// <summary>
/// The protobuf wire format, just enough to walk a message's top-level fields (the reading half of
/// <see cref="ProtoWriter"/>): <see cref="OnnxFileEditor"/> copies the fields it does not change byte for byte.
/// </summary>
public static class ProtoReader
{
    public static IEnumerable<ProtoField> Fields(ReadOnlyMemory<byte> message)
    {
        var pos = 0;
        while (pos < message.Length)
        {
            var start = pos;
            var tag = ReadVarint(message.Span, ref pos);
            var (number, wire) = ((int)(tag >> 3), (int)(tag & 7));
            ReadOnlyMemory<byte> body = default;
            switch (wire)
            {
                case 0: ReadVarint(message.Span, ref pos); break;
                case 1: pos += 8; break;
                case 5: pos += 4; break;
                case 2:
                    var length = checked((int)ReadVarint(message.Span, ref pos));
                    if (length < 0 || pos + length > message.Length) throw new InvalidDataException($"Field {number} runs past the end of the message.");
                    body = message.Slice(pos, length);
                    pos += length;
                    break;
                default: throw new InvalidDataException($"Field {number} has wire type {wire}, which ONNX files do not use.");
            }
            if (pos > message.Length) throw new InvalidDataException($"Field {number} runs past the end of the message.");
            yield return new ProtoField(number, wire, message[start..pos], body);
        }
    }

    /// <summary>The UTF-8 strings of every occurrence of length-delimited field <paramref name="number"/>.</summary>
    public static IEnumerable<string> Strings(ReadOnlyMemory<byte> message, int number) =>
        Fields(message).Where(f => f.Number == number && f.WireType == 2).Select(f => System.Text.Encoding.UTF8.GetString(f.Body.Span));

    /// <summary>The varint at the start of <paramref name="s"/>.</summary>
    public static ulong Varint(ReadOnlySpan<byte> s)
    {
        var pos = 0;
        return ReadVarint(s, ref pos);
    }

    /// <summary>The varints of a packed repeated field's body.</summary>
    public static List<ulong> PackedVarints(ReadOnlySpan<byte> s)
    {
        var (pos, values) = (0, new List<ulong>());
        while (pos < s.Length) values.Add(ReadVarint(s, ref pos));
        return values;
    }

    static ulong ReadVarint(ReadOnlySpan<byte> s, ref int pos)
    {
        ulong value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (pos >= s.Length) throw new InvalidDataException("A varint runs past the end of the message.");
            var b = s[pos++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return value;
        }
        throw new InvalidDataException("A varint is longer than 10 bytes.");
    }
}
