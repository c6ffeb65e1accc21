using System.Buffers.Binary;
using System.Text;

namespace AlexNet.Model.Onnx;

/// <summary>
/// The protobuf wire format, just enough to write ONNX messages: varints, length-delimited fields and fixed32 floats.
/// Messages are built bottom-up into byte arrays (a nested message needs its length first).
/// </summary>
public sealed class ProtoWriter
{
    readonly MemoryStream _buffer = new();

    public ProtoWriter Varint(int field, long value) { Tag(field, 0); WriteVarint((ulong)value); return this; }

    public ProtoWriter Float(int field, float value)
    {
        Tag(field, 5);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(b, value);
        _buffer.Write(b);
        return this;
    }

    public ProtoWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        Tag(field, 2);
        WriteVarint((ulong)value.Length);
        _buffer.Write(value);
        return this;
    }

    public ProtoWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));
    public ProtoWriter Message(int field, ProtoWriter message) => Bytes(field, message.ToArray());

    public long Length => _buffer.Length;
    public byte[] ToArray() => _buffer.ToArray();
    public void CopyTo(Stream stream) => stream.Write(_buffer.GetBuffer(), 0, checked((int)_buffer.Length));

    /// <summary>The tag and length of a length-delimited field whose body the caller writes next.</summary>
    public static void WriteHeader(Stream stream, int field, long length)
    {
        var w = new ProtoWriter();
        w.Tag(field, 2);
        w.WriteVarint((ulong)length);
        w.CopyTo(stream);
    }

    void Tag(int field, int wireType) => WriteVarint((ulong)(field << 3 | wireType));

    void WriteVarint(ulong value)
    {
        while (value >= 0x80) { _buffer.WriteByte((byte)(value | 0x80)); value >>= 7; }
        _buffer.WriteByte((byte)value);
    }
}
