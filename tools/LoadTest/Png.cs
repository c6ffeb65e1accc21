using System.IO.Compression;
using System.Text;

/// <summary>Distinct noise PNGs (stored, unfiltered rows), so no two requests share a cache key or a decode
/// (tools/ReplicaBench links this file).</summary>
static class Png
{
    public static byte[] Noise(int seed, int side)
    {
        var rng = new Random(seed);
        var raw = new byte[side * (1 + 3 * side)];
        rng.NextBytes(raw);
        for (var y = 0; y < side; y++) raw[y * (1 + 3 * side)] = 0;   // filter: none
        using var idat = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionLevel.Fastest, leaveOpen: true)) z.Write(raw);
        var ihdr = new byte[13];
        WriteBE(ihdr, 0, side);
        WriteBE(ihdr, 4, side);
        ihdr[8] = 8;
        ihdr[9] = 2;
        using var png = new MemoryStream();
        png.Write([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);
        Chunk(png, "IHDR", ihdr);
        Chunk(png, "IDAT", idat.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    static void Chunk(Stream s, string type, byte[] data)
    {
        var head = new byte[8];
        WriteBE(head, 0, data.Length);
        Encoding.ASCII.GetBytes(type, 0, 4, head, 4);
        s.Write(head);
        s.Write(data);
        var crc = new byte[4];
        WriteBE(crc, 0, (int)Crc([.. head[4..], .. data]));
        s.Write(crc);
    }

    static void WriteBE(byte[] b, int at, int v)
    {
        b[at] = (byte)(v >> 24);
        b[at + 1] = (byte)(v >> 16);
        b[at + 2] = (byte)(v >> 8);
        b[at + 3] = (byte)v;
    }

    static uint Crc(byte[] data)
    {
        var c = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            c ^= b;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        return c ^ 0xFFFFFFFFu;
    }
}
