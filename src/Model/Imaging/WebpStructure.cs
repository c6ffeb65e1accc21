using System.Buffers;
using System.Buffers.Binary;

namespace AlexNet.Model.Imaging;

/// <summary>
/// The number of Huffman groups (meta prefix codes) each lossless bitstream in a WebP file asks for: the VP8L image
/// and a losslessly compressed ALPH chunk. ImageSharp 2.1.13 sizes its tables from the largest group index in the
/// entropy image (up to 65,536 groups, 24-40 KB of managed arrays each, outside the allocator's limit), so a 160 KB,
/// 16x16 file took 1.5 GB (issue #20). Reading the group count means decoding the bitstream up to and including the
/// entropy image: the transforms' sub-images and the entropy image itself, each an entropy-coded image with its own
/// prefix codes, LZ77 back-references and colour cache (RFC 9649, "WebP Image Format", sections 3 to 5).
/// </summary>
internal readonly record struct WebpLosslessHeader(string Chunk, int Width, int Height, int Groups, int Tiles);

internal static class WebpStructure
{
    /// <summary>Thrown for a bitstream libwebp would refuse: the decoder maps it to Undecodable.</summary>
    internal sealed class MalformedException(string message) : Exception(message);

    /// <summary>Whether the bytes start like a WebP file (RIFF, then WEBP).</summary>
    public static bool IsWebp(ReadOnlySpan<byte> b) => b.Length >= 12 && b[..4].SequenceEqual("RIFF"u8) && b[8..12].SequenceEqual("WEBP"u8);

    /// <summary>
    /// Walks the chunks the way ImageSharp 2.1.13 does and returns every lossless bitstream in them, with its group
    /// count. Run it before <c>Image.Identify</c>: ImageSharp allocates a managed array of each ICCP, EXIF and XMP
    /// chunk's declared size while identifying (a 200-byte file declaring a 1 GB ICCP chunk took 1 GB and 3.5 s).
    /// ImageSharp reads only the first chunk of a simple file (VP8 or VP8L); after a VP8X header it reads exactly 10
    /// bytes, whatever the chunk's size says, then every chunk to the end of the bytes (not of the RIFF size), the
    /// last image and ALPH chunks winning. This walk sees the same chunks, and refuses, as libwebp does, what would let
    /// the two walks differ or ask for memory the file does not hold: a VP8X size other than 10, a chunk that declares
    /// more bytes than follow, a cut-off chunk header, two image or two ALPH chunks.
    /// Throws <see cref="MalformedException"/> for those and for bitstreams libwebp would refuse (truncated
    /// prefix-code or entropy-image data, incomplete or over-subscribed prefix codes, back-references before the
    /// start). Reads each bitstream only up to its entropy image. An image over <paramref name="maxPixels"/> is not
    /// parsed: the pixel budget refuses it once ImageSharp has read its header.
    /// </summary>
    /// <param name="b">The whole file.</param>
    /// <param name="maxPixels">The decoder's pixel budget; bounds the sub-images this parse allocates.</param>
    /// <param name="readGroupCodes">Also read every group's five prefix codes after the entropy image (tests use it to
    /// check that the parse stayed in step with the bitstream: a wrong count or bit position breaks those codes).</param>
    public static List<WebpLosslessHeader> Read(ReadOnlySpan<byte> b, long maxPixels = long.MaxValue, bool readGroupCodes = false)
    {
        var found = new List<WebpLosslessHeader>();
        if (!IsWebp(b) || b.Length < 20) return found;
        var first = b.Slice(12, 4);
        if (first.SequenceEqual("VP8L"u8))
        {
            ReadVp8L(Payload(b, 12, out _), maxPixels, readGroupCodes, found);
            return found;
        }
        if (first.SequenceEqual("VP8 "u8))
        {
            Payload(b, 12, out _);   // simple lossy: only a truncated chunk to refuse (ImageSharp decodes zeros past its end)
            return found;
        }
        if (!first.SequenceEqual("VP8X"u8)) return found;   // not a WebP ImageSharp reads: it refuses it
        if (BinaryPrimitives.ReadUInt32LittleEndian(b[16..]) != 10 || b.Length < 30)
            throw new MalformedException("The WebP's VP8X chunk is not 10 bytes long.");
        (int W, int H)? image = null;
        int images = 0, alphas = 0, alphaStart = -1, alphaLength = 0;
        for (var p = 30; p < b.Length;)
        {
            var payload = Payload(b, p, out var next);
            var fourcc = b.Slice(p, 4);
            if (fourcc.SequenceEqual("VP8 "u8))
            {
                if (payload.Length < 10) throw new MalformedException("The WebP's VP8 chunk is shorter than its frame header.");
                images++;
                image ??= (BinaryPrimitives.ReadUInt16LittleEndian(payload[6..]) & 0x3FFF, BinaryPrimitives.ReadUInt16LittleEndian(payload[8..]) & 0x3FFF);
            }
            else if (fourcc.SequenceEqual("VP8L"u8))
            {
                if (++images == 1) image = ReadVp8L(payload, maxPixels, readGroupCodes, found);
            }
            else if (fourcc.SequenceEqual("ALPH"u8))
            {
                if (++alphas == 1 && payload.Length >= 1 && (payload[0] & 3) == 1) (alphaStart, alphaLength) = (p + 8, payload.Length);
            }
            else if (fourcc.SequenceEqual("ANIM"u8)) return found;   // animated: ImageSharp stops here and refuses it
            p = next;
        }
        // A still image has one image chunk and at most one ALPH (ImageSharp would use the last of each).
        if (images > 1 || alphas > 1)
            throw new MalformedException($"The WebP has {images} image chunks (VP8, VP8L) and {alphas} ALPH chunks; a still image has one and at most one.");
        // The alpha plane has the image's size (ImageSharp takes it from the VP8 frame, not the canvas, and so does
        // not refuse a canvas that differs, as libwebp would) and no VP8L header: the stream starts after the ALPH byte.
        if (alphaStart >= 0 && image is { } size && (long)size.W * size.H <= maxPixels)
        {
            var r = new BitReader(b.Slice(alphaStart + 1, alphaLength - 1));
            found.Add(ReadImageStream(ref r, "ALPH", size.W, size.H, readGroupCodes));
        }
        return found;
    }

    /// <summary>The payload of the chunk at <paramref name="p"/>, and where the next chunk starts (sizes are padded to
    /// even). Refuses a cut-off header and a payload larger than the bytes that follow (the pad byte may be missing).</summary>
    static ReadOnlySpan<byte> Payload(ReadOnlySpan<byte> b, int p, out int next)
    {
        if (p + 8 > b.Length) throw new MalformedException("The WebP ends inside a chunk header.");
        var size = BinaryPrimitives.ReadUInt32LittleEndian(b[(p + 4)..]);
        var left = b.Length - (p + 8);
        if (size > left)
            throw new MalformedException($"The WebP's {System.Text.Encoding.ASCII.GetString(b.Slice(p, 4))} chunk declares {size:N0} bytes but {left:N0} follow.");
        next = (int)Math.Min(b.Length, p + 8 + size + (size & 1));
        return b.Slice(p + 8, (int)size);
    }

    static (int W, int H) ReadVp8L(ReadOnlySpan<byte> payload, long maxPixels, bool readGroupCodes, List<WebpLosslessHeader> found)
    {
        var r = new BitReader(payload);
        if (r.Read(8) != 0x2F) throw new MalformedException("The VP8L chunk does not start with its signature byte 0x2F.");
        int w = (int)r.Read(14) + 1, h = (int)r.Read(14) + 1;
        r.Read(1);   // alpha_is_used: a hint only
        if (r.Read(3) != 0) throw new MalformedException("The VP8L version is not 0.");
        if ((long)w * h <= maxPixels) found.Add(ReadImageStream(ref r, "VP8L", w, h, readGroupCodes));
        return (w, h);
    }

    // RFC 9649 section 3: transforms, each at most once, then the colour cache and the meta prefix codes.
    static WebpLosslessHeader ReadImageStream(ref BitReader r, string chunk, int width, int height, bool readGroupCodes)
    {
        var xsize = width;
        var seen = 0;
        while (r.Read(1) == 1)
        {
            var type = (int)r.Read(2);
            if ((seen & (1 << type)) != 0) throw new MalformedException($"{chunk}: transform {type} appears twice.");
            seen |= 1 << type;
            switch (type)
            {
                case 0 or 1:   // predictor, colour: a sub-image of one pixel per block
                    var bits = (int)r.Read(3) + 2;
                    ReadSubImage(ref r, chunk, SubSample(xsize, bits), SubSample(height, bits));
                    break;
                case 3:        // colour indexing: the palette, then pixels are packed 2, 4 or 8 to a byte
                    var colors = (int)r.Read(8) + 1;
                    ReadSubImage(ref r, chunk, colors, 1);
                    xsize = SubSample(xsize, colors > 16 ? 0 : colors > 4 ? 1 : colors > 2 ? 2 : 3);
                    break;
            }
        }
        var cacheBits = ReadColorCacheBits(ref r, chunk);
        if (r.Read(1) == 0)
        {
            if (readGroupCodes) ReadGroupCodes(ref r, chunk, 1, cacheBits);
            return new WebpLosslessHeader(chunk, width, height, Groups: 1, Tiles: 1);
        }

        var prefixBits = (int)r.Read(3) + 2;
        int tx = SubSample(xsize, prefixBits), ty = SubSample(height, prefixBits);
        var tiles = tx * ty;
        var entropy = ArrayPool<uint>.Shared.Rent(tiles);
        try
        {
            ReadEntropyCodedImage(ref r, chunk, tx, ty, entropy);
            var groups = 1;
            foreach (var pixel in entropy.AsSpan(0, tiles)) groups = Math.Max(groups, (int)((pixel >> 8) & 0xFFFF) + 1);   // red and green
            if (readGroupCodes) ReadGroupCodes(ref r, chunk, groups, cacheBits);
            return new WebpLosslessHeader(chunk, width, height, groups, tiles);
        }
        finally
        {
            ArrayPool<uint>.Shared.Return(entropy);
        }
    }

    static void ReadGroupCodes(ref BitReader r, string chunk, int groups, int cacheBits)
    {
        for (var g = 0; g < groups; g++)
        {
            PrefixCode.Read(ref r, chunk, 256 + 24 + (cacheBits == 0 ? 0 : 1 << cacheBits));
            for (var k = 0; k < 3; k++) PrefixCode.Read(ref r, chunk, 256);
            PrefixCode.Read(ref r, chunk, 40);
        }
    }

    static void ReadSubImage(ref BitReader r, string chunk, int xsize, int ysize)
    {
        var pixels = ArrayPool<uint>.Shared.Rent(xsize * ysize);
        try
        {
            ReadEntropyCodedImage(ref r, chunk, xsize, ysize, pixels);
        }
        finally
        {
            ArrayPool<uint>.Shared.Return(pixels);
        }
    }

    static int ReadColorCacheBits(ref BitReader r, string chunk)
    {
        if (r.Read(1) == 0) return 0;
        var bits = (int)r.Read(4);
        if (bits is < 1 or > 11) throw new MalformedException($"{chunk}: colour cache bits {bits} (1 to 11 allowed).");
        return bits;
    }

    static int SubSample(int size, int bits) => (size + (1 << bits) - 1) >> bits;

    /// <summary>An entropy-coded sub-image (no meta prefix codes): one group of five prefix codes, then the pixels.
    /// <paramref name="pixels"/> (at least <paramref name="xsize"/> x <paramref name="ysize"/>) receives the ARGB
    /// values: back-references copy them and the colour cache hashes them, so they are kept even when unused.</summary>
    static void ReadEntropyCodedImage(ref BitReader r, string chunk, int xsize, int ysize, uint[] pixels)
    {
        var cacheBits = ReadColorCacheBits(ref r, chunk);
        var cacheSize = cacheBits == 0 ? 0 : 1 << cacheBits;
        var green = PrefixCode.Read(ref r, chunk, 256 + 24 + cacheSize);
        var red = PrefixCode.Read(ref r, chunk, 256);
        var blue = PrefixCode.Read(ref r, chunk, 256);
        var alpha = PrefixCode.Read(ref r, chunk, 256);
        var distance = PrefixCode.Read(ref r, chunk, 40);

        var total = (long)xsize * ysize;
        var cache = cacheSize == 0 ? null : new uint[cacheSize];
        for (long pos = 0; pos < total;)
        {
            var g = green.Decode(ref r);
            if (g < 256)
            {
                // Stream order is green, red, blue, alpha.
                uint r8 = (uint)red.Decode(ref r), b8 = (uint)blue.Decode(ref r), a8 = (uint)alpha.Decode(ref r);
                Emit(pixels, cache, cacheBits, pos++, (a8 << 24) | (r8 << 16) | ((uint)g << 8) | b8);
            }
            else if (g < 256 + 24)
            {
                var length = PrefixValue(ref r, g - 256);
                var dist = PlaneCodeToDistance(xsize, PrefixValue(ref r, distance.Decode(ref r)));
                if (dist > pos || length > total - pos)
                    throw new MalformedException($"{chunk}: a back-reference reaches outside the image.");
                for (var k = 0; k < length; k++, pos++) Emit(pixels, cache, cacheBits, pos, pixels[pos - dist]);
            }
            else
            {
                var key = g - 256 - 24;   // the green alphabet has exactly cacheSize codes past the lengths
                Emit(pixels, cache, cacheBits, pos++, cache![key]);
            }
            if (r.Overrun) throw new MalformedException($"{chunk}: the bitstream ends inside a sub-image.");
        }
    }

    static void Emit(uint[] pixels, uint[]? cache, int cacheBits, long pos, uint argb)
    {
        pixels[pos] = argb;
        if (cache is not null) cache[(0x1E35A7BDu * argb) >> (32 - cacheBits)] = argb;
    }

    // RFC 9649 section 5.2.2: length and distance prefix codes with extra bits.
    static int PrefixValue(ref BitReader r, int prefix)
    {
        if (prefix < 4) return prefix + 1;
        var extra = (prefix - 2) >> 1;
        var offset = (2 + (prefix & 1)) << extra;
        return offset + (int)r.Read(extra) + 1;
    }

    static int PlaneCodeToDistance(int xsize, int code)
    {
        if (code > 120) return code - 120;
        var d = CodeToPlane[code - 1];
        var dist = (d >> 4) * xsize + 8 - (d & 15);
        return Math.Max(dist, 1);
    }

    // RFC 9649 section 5.2.2, the distance map (dy << 4 | 8 - dx).
    static ReadOnlySpan<byte> CodeToPlane =>
    [
        0x18, 0x07, 0x17, 0x19, 0x28, 0x06, 0x27, 0x29, 0x16, 0x1a, 0x26, 0x2a, 0x38, 0x05, 0x37, 0x39, 0x15, 0x1b, 0x36, 0x3a,
        0x25, 0x2b, 0x48, 0x04, 0x47, 0x49, 0x14, 0x1c, 0x35, 0x3b, 0x46, 0x4a, 0x24, 0x2c, 0x58, 0x45, 0x4b, 0x34, 0x3c, 0x03,
        0x57, 0x59, 0x13, 0x1d, 0x56, 0x5a, 0x23, 0x2d, 0x44, 0x4c, 0x55, 0x5b, 0x33, 0x3d, 0x68, 0x02, 0x67, 0x69, 0x12, 0x1e,
        0x66, 0x6a, 0x22, 0x2e, 0x54, 0x5c, 0x43, 0x4d, 0x65, 0x6b, 0x32, 0x3e, 0x78, 0x01, 0x77, 0x79, 0x53, 0x5d, 0x11, 0x1f,
        0x64, 0x6c, 0x42, 0x4e, 0x76, 0x7a, 0x21, 0x2f, 0x75, 0x7b, 0x31, 0x3f, 0x63, 0x6d, 0x52, 0x5e, 0x00, 0x74, 0x7c, 0x41,
        0x4f, 0x10, 0x20, 0x62, 0x6e, 0x30, 0x73, 0x7d, 0x51, 0x5f, 0x40, 0x72, 0x7e, 0x61, 0x6f, 0x50, 0x71, 0x7f, 0x60, 0x70,
    ];

    /// <summary>LSB-first bits, as VP8L packs them. Reading past the end yields zeros and sets <see cref="Overrun"/>.</summary>
    internal ref struct BitReader(ReadOnlySpan<byte> data)
    {
        readonly ReadOnlySpan<byte> _data = data;
        long _bit;
        public readonly bool Overrun => _bit > 8L * _data.Length;

        public uint Read(int n)
        {
            uint v = 0;
            for (var i = 0; i < n; i++) v |= (uint)ReadBit() << i;
            return v;
        }

        public int ReadBit()
        {
            var byteIndex = _bit >> 3;
            var bit = byteIndex < _data.Length ? (_data[(int)byteIndex] >> (int)(_bit & 7)) & 1 : 0;
            _bit++;
            return bit;
        }
    }

    /// <summary>A canonical prefix code from its code lengths (RFC 9649 section 3.7.2), decoded bit by bit as in
    /// zlib's puff: codes are assigned in order of length, then symbol, and sent most significant bit first.</summary>
    internal sealed class PrefixCode
    {
        readonly int[] _count = new int[16];   // codes of each length
        readonly int[] _symbols;               // symbols ordered by (length, symbol)
        readonly int _single = -1;             // a code of one symbol takes no bits

        PrefixCode(ReadOnlySpan<int> lengths, string chunk)
        {
            var used = 0;
            foreach (var l in lengths)
                if (l > 0) { _count[l]++; used++; }
            if (used == 0) throw new MalformedException($"{chunk}: a prefix code with no symbols.");
            _symbols = new int[used];
            if (used == 1)
            {
                _single = lengths.IndexOfAnyExcept(0);
                return;
            }
            var left = 1;   // Kraft: the code must be complete, neither over-subscribed nor with unused codes
            for (var len = 1; len < 16; len++)
            {
                left = (left << 1) - _count[len];
                if (left < 0) throw new MalformedException($"{chunk}: an over-subscribed prefix code.");
            }
            if (left != 0) throw new MalformedException($"{chunk}: an incomplete prefix code.");
            Span<int> offset = stackalloc int[16];
            for (var len = 1; len < 15; len++) offset[len + 1] = offset[len] + _count[len];
            for (var s = 0; s < lengths.Length; s++)
                if (lengths[s] > 0) _symbols[offset[lengths[s]]++] = s;
        }

        public int Decode(ref BitReader r)
        {
            if (_single >= 0) return _single;
            int code = 0, first = 0, index = 0;
            for (var len = 1; len < 16; len++)
            {
                code |= r.ReadBit();
                var count = _count[len];
                if (code - first < count) return _symbols[index + code - first];
                index += count;
                first = (first + count) << 1;
                code <<= 1;
            }
            throw new InvalidOperationException("unreachable for a complete code");
        }

        static ReadOnlySpan<byte> CodeLengthOrder => [17, 18, 0, 1, 2, 3, 4, 5, 16, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

        public static PrefixCode Read(ref BitReader r, string chunk, int alphabet)
        {
            var lengths = new int[alphabet];
            if (r.Read(1) == 1)
            {
                // Simple code: one or two symbols of at most 8 bits; a symbol outside the alphabet is ignored (libwebp).
                var two = r.Read(1) == 1;
                var s0 = (int)r.Read(r.Read(1) == 1 ? 8 : 1);
                if (s0 < alphabet) lengths[s0] = 1;
                if (two)
                {
                    var s1 = (int)r.Read(8);
                    if (s1 < alphabet) lengths[s1] = 1;
                }
            }
            else
            {
                Span<int> codeLengthLengths = stackalloc int[19];
                var n = (int)r.Read(4) + 4;
                for (var i = 0; i < n; i++) codeLengthLengths[CodeLengthOrder[i]] = (int)r.Read(3);
                var lengthCode = new PrefixCode(codeLengthLengths, chunk);
                var max = alphabet;
                if (r.Read(1) == 1)
                {
                    var nbits = 2 + 2 * (int)r.Read(3);
                    max = 2 + (int)r.Read(nbits);
                    if (max > alphabet) throw new MalformedException($"{chunk}: a prefix code longer than its alphabet.");
                }
                var previous = 8;
                for (var s = 0; s < alphabet && max-- > 0;)
                {
                    var len = lengthCode.Decode(ref r);
                    if (len < 16)
                    {
                        lengths[s++] = len;
                        if (len != 0) previous = len;
                        continue;
                    }
                    var repeat = len switch { 16 => (int)r.Read(2) + 3, 17 => (int)r.Read(3) + 3, _ => (int)r.Read(7) + 11 };
                    if (s + repeat > alphabet) throw new MalformedException($"{chunk}: code lengths run past the alphabet.");
                    lengths.AsSpan(s, repeat).Fill(len == 16 ? previous : 0);
                    s += repeat;
                    if (r.Overrun) break;
                }
            }
            if (r.Overrun) throw new MalformedException($"{chunk}: the bitstream ends inside a prefix code.");
            return new PrefixCode(lengths, chunk);
        }
    }
}
