using System.Text;

namespace AlexNet.Tests.Shared;

/// <summary>Hostile image files of issue #20, built in code: the decoder's tests (Model.Tests) and the service's
/// (Api.Tests) send the same bytes.</summary>
public static class HostileFiles
{
    /// <summary>
    /// A progressive greyscale JPEG that declares <paramref name="width"/> x <paramref name="height"/> and carries
    /// <paramref name="scans"/> empty AC-refinement scans (Ss=1, Se=63, Ah=1, Al=0; 10 bytes each): the attack of
    /// issue #20. ImageSharp 2.1.13 walks every block of the frame for each one (~30 ms a scan at 8192x4882).
    /// </summary>
    public static byte[] ScanBomb(int scans, int width, int height)
    {
        var o = new List<byte> { 0xFF, 0xD8 };
        o.AddRange([0xFF, 0xDB, 0, 67, 0]);                             // DQT: table 0, all ones
        o.AddRange(Enumerable.Repeat((byte)1, 64));
        o.AddRange([0xFF, 0xC2, 0, 11, 8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, 1, 1, 0x11, 0]);
        o.AddRange([0xFF, 0xC4, 0, 20, 0x10, 1, .. new byte[15], 0]);   // DHT: AC table 0, one 1-bit code for symbol 0 (EOB)
        for (var i = 0; i < scans; i++) o.AddRange([0xFF, 0xDA, 0, 8, 1, 1, 0x00, 1, 63, 0x10]);
        o.AddRange([0xFF, 0xD9]);
        return [.. o];
    }

    /// <summary>LSB-first bit packing, as VP8L reads it.</summary>
    public sealed class BitWriter
    {
        readonly List<byte> _bytes = [];
        int _bit;

        public BitWriter Bits(uint value, int n)
        {
            for (var i = 0; i < n; i++, _bit++)
            {
                if ((_bit & 7) == 0) _bytes.Add(0);
                _bytes[^1] |= (byte)(((value >> i) & 1) << (_bit & 7));
            }
            return this;
        }

        /// <summary>A simple prefix code of one 8-bit symbol: it takes no bits to decode.</summary>
        public BitWriter OneSymbol(byte symbol) => Bits(1, 1).Bits(0, 1).Bits(1, 1).Bits(symbol, 8);

        public byte[] ToArray() => [.. _bytes];
    }

    /// <summary>
    /// A <paramref name="size"/> x <paramref name="size"/> lossless WebP whose entropy image (prefix bits 2) points
    /// every tile at group <paramref name="group"/>, so the decoder must build <paramref name="group"/> + 1 groups; each
    /// group is five one-symbol codes (20 bits), and every pixel then takes no bits. 65,535 gives the 160 KB, 16x16
    /// file of issue #20.
    /// </summary>
    public static byte[] GroupBomb(int size, int group) => Riff("VP8L", GroupBombStream(
        new BitWriter().Bits(0x2F, 8).Bits((uint)size - 1, 14).Bits((uint)size - 1, 14).Bits(0, 1).Bits(0, 3), group));   // VP8L header

    /// <summary>The image stream of <see cref="GroupBomb"/> after whatever <paramref name="w"/> holds.</summary>
    public static byte[] GroupBombStream(BitWriter w, int group)
    {
        w.Bits(0, 1)                                      // no transform
            .Bits(0, 1)                                   // no colour cache
            .Bits(1, 1).Bits(0, 3)                        // meta prefix codes, 2 bits: (size/4)^2 tiles
            .Bits(0, 1)                                   // entropy image: no colour cache
            .OneSymbol((byte)group).OneSymbol((byte)(group >> 8)).OneSymbol(0).OneSymbol(0).OneSymbol(0);   // green, red, blue, alpha, distance
        for (var g = 0; g <= group; g++)
            for (var code = 0; code < 5; code++) w.Bits(0b0001, 4);   // simple, one symbol, 1-bit symbol 0
        return w.ToArray();
    }

    public static byte[] Riff(string fourcc, byte[] payload)
    {
        var padded = payload.Length + (payload.Length & 1);
        using var ms = new MemoryStream();
        using var o = new BinaryWriter(ms);
        o.Write("RIFF"u8);
        o.Write(4 + 8 + padded);
        o.Write("WEBP"u8);
        o.Write(Encoding.ASCII.GetBytes(fourcc));
        o.Write(payload.Length);
        o.Write(payload);
        if ((payload.Length & 1) == 1) o.Write((byte)0);
        o.Flush();
        return ms.ToArray();
    }
}
