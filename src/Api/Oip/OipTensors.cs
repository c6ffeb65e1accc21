using System.Buffers.Binary;

namespace AlexNet.Api.Oip;

/// <summary>The two data types this service reads and writes (the protocol names more; they are refused with 400).</summary>
public static class Datatypes
{
    public const string Fp32 = "FP32";
    public const string Bytes = "BYTES";
}

/// <summary>An input tensor as either transport parsed it: FP32 data in <see cref="Floats"/>, BYTES elements in
/// <see cref="Elements"/>; the element count already matches the shape.</summary>
public sealed record OipInput(string Name, string Datatype, long[] Shape, float[]? Floats, byte[][]? Elements);

/// <summary>An output the client asked for: as binary data (the binary tensor data extension), and as the top
/// <see cref="Classification"/> classes (Triton's classification extension) instead of the raw tensor.</summary>
public sealed record OipRequestedOutput(string Name, bool Binary, int? Classification);

/// <summary>An inference request, whichever transport carried it.</summary>
/// <param name="Outputs">Empty: every output the model has.</param>
/// <param name="BinaryOutputs">The request-level binary_data_output parameter: every output as binary data.</param>
public sealed record OipInferRequest(string ModelName, string? ModelVersion, string? Id, IReadOnlyList<OipInput> Inputs,
    IReadOnlyList<OipRequestedOutput> Outputs, bool BinaryOutputs = false);

/// <summary>An output tensor: FP32 in <see cref="Floats"/> or BYTES (classification strings) in <see cref="Strings"/>.</summary>
public sealed record OipOutput(string Name, string Datatype, long[] Shape, float[]? Floats, string[]? Strings, bool Binary)
{
    /// <summary>The flattened, row-major, little-endian bytes of the tensor; BYTES elements each after a 4-byte
    /// little-endian length (the binary tensor data extension's and raw_output_contents' form).</summary>
    public byte[] Raw()
    {
        if (Floats is { } f) return Tensors.ToBytes(f);
        var elements = Strings!.Select(System.Text.Encoding.UTF8.GetBytes).ToArray();
        return Tensors.ToBytes(elements);
    }
}

public sealed record OipInferResult(string ModelName, string ModelVersion, string? Id, IReadOnlyList<OipOutput> Outputs);

/// <summary>Shapes, element counts and the binary forms of tensors.</summary>
public static class Tensors
{
    /// <summary>The element count of <paramref name="shape"/>; a 400 refusal for a negative dimension or a count above
    /// <paramref name="max"/> (this includes counts that overflow 64 bits), before any data is read.</summary>
    public static long ElementCount(string input, IReadOnlyList<long> shape, long max)
    {
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw RefusedException.BadInput($"Input '{input}' has a negative dimension in its shape [{string.Join(", ", shape)}].");
            if (d != 0 && count > max / d)
                throw RefusedException.BadInput($"Input '{input}' has shape [{string.Join(", ", shape)}]: its element count overflows the " +
                    $"limit of {max:N0} elements a request may carry.");
            count *= d;
        }
        return count;
    }

    public static float[] Floats(string input, ReadOnlySpan<byte> raw, long count)
    {
        if (raw.Length != count * sizeof(float))
            throw RefusedException.BadInput($"Input '{input}' has {raw.Length:N0} bytes of FP32 data; its shape needs {count:N0} elements, " +
                $"{count * sizeof(float):N0} bytes.");
        var floats = new float[count];
        for (var i = 0; i < floats.Length; i++) floats[i] = BinaryPrimitives.ReadSingleLittleEndian(raw[(i * 4)..]);
        return floats;
    }

    /// <summary>BYTES elements, each a 4-byte little-endian length and its bytes, exactly <paramref name="count"/> of
    /// them filling <paramref name="raw"/>.</summary>
    public static byte[][] Elements(string input, ReadOnlySpan<byte> raw, long count)
    {
        var elements = new List<byte[]>();
        var at = 0;
        while (at < raw.Length)
        {
            if (raw.Length - at < 4 || elements.Count >= count)
                throw BadBytes(input, count);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(raw[at..]);
            at += 4;
            if (length > raw.Length - at) throw BadBytes(input, count);
            elements.Add(raw.Slice(at, (int)length).ToArray());
            at += (int)length;
        }
        if (elements.Count != count) throw BadBytes(input, count);
        return [.. elements];
    }

    static RefusedException BadBytes(string input, long count) => RefusedException.BadInput(
        $"Input '{input}': its BYTES data is not {count:N0} elements each after a 4-byte little-endian length, as its shape says.");

    public static byte[] ToBytes(float[] floats)
    {
        var bytes = new byte[floats.Length * sizeof(float)];
        for (var i = 0; i < floats.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), floats[i]);
        return bytes;
    }

    public static byte[] ToBytes(IReadOnlyList<byte[]> elements)
    {
        var bytes = new byte[elements.Sum(e => 4L + e.Length)];
        var at = 0;
        foreach (var e in elements)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), (uint)e.Length);
            e.CopyTo(bytes, at + 4);
            at += 4 + e.Length;
        }
        return bytes;
    }
}
