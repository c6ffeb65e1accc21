using System.Buffers.Binary;
using System.IO.Compression;
using System.Net.Sockets;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Metadata.Profiles.Exif;
using SixLabors.ImageSharp.PixelFormats;

namespace AlexNet.Api.Tests;

/// <summary>
/// Hostile and unusual files, made in code. Where ImageSharp 2.1.13 cannot encode a variant (CMYK or progressive
/// JPEG, GIFs with many frames, animated WebP, lying headers) the bytes are written by hand, chunk by chunk.
/// </summary>
public static class HostileImages
{
    // ---- PNG, chunk by chunk -------------------------------------------------------------------------------------

    static readonly byte[] PngSignature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>A PNG chunk: length, type, data, CRC-32 of type and data.</summary>
    public static byte[] Chunk(string type, ReadOnlySpan<byte> data)
    {
        var chunk = new byte[12 + data.Length];
        BinaryPrimitives.WriteInt32BigEndian(chunk, data.Length);
        Encoding.ASCII.GetBytes(type, chunk.AsSpan(4, 4));
        data.CopyTo(chunk.AsSpan(8));
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), Crc32.Compute(chunk.AsSpan(4, 4 + data.Length)));
        return chunk;
    }

    public static byte[] Ihdr(int width, int height, byte bitDepth = 8, byte colorType = 2)
    {
        var d = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(d, width);
        BinaryPrimitives.WriteInt32BigEndian(d.AsSpan(4), height);
        d[8] = bitDepth;
        d[9] = colorType;   // 2: RGB
        return Chunk("IHDR", d);
    }

    /// <summary>zlib of <paramref name="zeros"/> zero bytes, written in 1 MiB pieces (about 1 KB per MB).</summary>
    public static byte[] ZlibZeros(long zeros)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var block = new byte[1 << 20];
            for (var left = zeros; left > 0; left -= block.Length) z.Write(block, 0, (int)Math.Min(block.Length, left));
        }
        return ms.ToArray();
    }

    /// <summary>A real RGB PNG of <paramref name="width"/> x <paramref name="height"/> with extra chunks before IDAT.</summary>
    public static byte[] Png(int width, int height, params byte[][] extraChunks)
    {
        var raw = new byte[height * (1 + 3 * width)];   // filter byte 0 and RGB per row
        for (var y = 0; y < height; y++)
            for (var x = 0; x < width; x++)
                raw[y * (1 + 3 * width) + 1 + 3 * x] = (byte)(x * 7 + y * 3);
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Fastest, leaveOpen: true)) z.Write(raw);
        return [.. PngSignature, .. Ihdr(width, height), .. extraChunks.SelectMany(c => c), .. Chunk("IDAT", ms.ToArray()), .. Chunk("IEND", [])];
    }

    /// <summary>A PNG whose header declares a canvas it does not carry (a few bytes of IDAT).</summary>
    public static byte[] PngDeclaring(int width, int height) =>
        [.. PngSignature, .. Ihdr(width, height), .. Chunk("IDAT", ZlibZeros(1024)), .. Chunk("IEND", [])];

    /// <summary>A 16x16 PNG with a compressed text chunk (zTXt, iTXt or iCCP) that inflates to <paramref name="inflated"/> bytes.</summary>
    public static byte[] PngTextBomb(string type, long inflated)
    {
        var bomb = ZlibZeros(inflated);
        byte[] head = type switch
        {
            "zTXt" => [.. "Comment"u8, 0, 0],                 // keyword, NUL, compression method 0
            "iTXt" => [.. "Comment"u8, 0, 1, 0, 0, 0],        // keyword, NUL, compressed, method 0, no language, no translation
            "iCCP" => [.. "ICC Profile"u8, 0, 0],
            _ => throw new ArgumentOutOfRangeException(nameof(type)),
        };
        return Png(16, 16, Chunk(type, [.. head, .. bomb]));
    }

    public static byte[] PngWithBadCrc()
    {
        var png = Png(16, 16);
        png[8 + 8 + 13] ^= 0xFF;   // first CRC byte of IHDR (signature, length and type, 13 data bytes)
        return png;
    }

    public static byte[] EncodePng<TPixel>(Image<TPixel> image, PngEncoder encoder) where TPixel : unmanaged, IPixel<TPixel>
    {
        using var ms = new MemoryStream();
        image.SaveAsPng(ms, encoder);
        return ms.ToArray();
    }

    public static byte[] GreyPng(byte bits = 8)
    {
        using var image = TestImages.Make(3).CloneAs<L8>();
        return EncodePng(image, new PngEncoder { ColorType = PngColorType.Grayscale, BitDepth = (PngBitDepth)bits });
    }

    public static byte[] PalettePng()
    {
        using var image = TestImages.Make(4);
        return EncodePng(image, new PngEncoder { ColorType = PngColorType.Palette, BitDepth = PngBitDepth.Bit8 });
    }

    public static byte[] SixteenBitPng(bool grey = false)
    {
        using var image = TestImages.Make(5).CloneAs<Rgb48>();
        return EncodePng(image, new PngEncoder { ColorType = grey ? PngColorType.Grayscale : PngColorType.Rgb, BitDepth = PngBitDepth.Bit16 });
    }

    public static byte[] InterlacedPng()
    {
        using var image = TestImages.Make(6);
        return EncodePng(image, new PngEncoder { InterlaceMethod = PngInterlaceMode.Adam7 });
    }

    /// <summary>RGBA whose left half is fully transparent; the hidden colour under alpha 0 is <paramref name="hidden"/>.</summary>
    public static byte[] AlphaPng(byte hidden = 0, bool greyAlpha = false)
    {
        using var image = TestImages.Make(7).CloneAs<Rgba32>();
        for (var y = 0; y < image.Height; y++)
            for (var x = 0; x < image.Width / 2; x++)
                image[x, y] = new Rgba32(hidden, (byte)(255 - hidden), hidden, 0);
        return EncodePng(image, new PngEncoder { ColorType = greyAlpha ? PngColorType.GrayscaleWithAlpha : PngColorType.RgbWithAlpha });
    }

    // ---- JPEG --------------------------------------------------------------------------------------------------

    public static byte[] Jpeg(int seed, int width = 90, int height = 72, ushort? orientation = null, JpegColorType? color = null)
    {
        using var image = TestImages.Make(seed, width, height);
        if (orientation is { } o)
        {
            image.Metadata.ExifProfile = new ExifProfile();
            image.Metadata.ExifProfile.SetValue(ExifTag.Orientation, o);
        }
        using var ms = new MemoryStream();
        image.SaveAsJpeg(ms, new JpegEncoder { Quality = 90, ColorType = color });
        return ms.ToArray();
    }

    /// <summary>A JPEG whose SOF marker declares <paramref name="width"/> x <paramref name="height"/>; the scan data is for 90x72.</summary>
    public static byte[] JpegDeclaring(int width, int height)
    {
        var jpeg = Jpeg(8);
        for (var i = 2; i < jpeg.Length - 9; i++)
            if (jpeg[i] == 0xFF && jpeg[i + 1] is 0xC0 or 0xC1 or 0xC2)
            {
                BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(i + 5), (ushort)height);
                BinaryPrimitives.WriteUInt16BigEndian(jpeg.AsSpan(i + 7), (ushort)width);
                return jpeg;
            }
        throw new InvalidOperationException("No SOF marker in the encoded JPEG.");
    }

    /// <summary>
    /// A hand-written JPEG of flat 8x8 blocks (DC only, every AC coefficient zero), 1x1 sampling, quantisation 1:
    /// baseline or progressive (a DC scan, then one AC scan per component of end-of-band codes), with 1 (grey),
    /// 3 (YCbCr) or 4 components (CMYK, Adobe APP14 transform 0). ImageSharp 2.1.13 encodes neither CMYK nor
    /// progressive, so the bytes are written here. <paramref name="sample"/> gives a block's value per component.
    /// </summary>
    public static byte[] FlatJpeg(int width, int height, int components, bool progressive, Func<int, int, int, byte> sample)
    {
        var (bw, bh) = ((width + 7) / 8, (height + 7) / 8);
        using var ms = new MemoryStream();
        void Marker(byte m, ReadOnlySpan<byte> payload)
        {
            ms.WriteByte(0xFF);
            ms.WriteByte(m);
            Span<byte> length = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16BigEndian(length, (ushort)(payload.Length + 2));
            ms.Write(length);
            ms.Write(payload);
        }
        ms.Write([0xFF, 0xD8]);
        if (components == 4) Marker(0xEE, [.. "Adobe"u8, 0, 100, 0, 0, 0, 0, 0]);   // version 100, flags 0, transform 0 (CMYK)
        Marker(0xDB, [0, .. Enumerable.Repeat((byte)1, 64)]);                       // table 0: every step 1
        var sof = new List<byte> { 8, (byte)(height >> 8), (byte)height, (byte)(width >> 8), (byte)width, (byte)components };
        for (var c = 0; c < components; c++) sof.AddRange([(byte)(c + 1), 0x11, 0]);
        Marker(progressive ? (byte)0xC2 : (byte)0xC0, [.. sof]);
        // DC table 0: categories 0..11, each a 4-bit code equal to the category. AC table 0: one 1-bit code, 0x00 (EOB).
        Marker(0xC4, [0x00, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, .. Enumerable.Range(0, 12).Select(i => (byte)i),
            0x10, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00]);

        void Scan(int[] comps, int ss, int se, bool dc, bool ac)
        {
            var sos = new List<byte> { (byte)comps.Length };
            foreach (var c in comps) sos.AddRange([(byte)(c + 1), 0x00]);
            sos.AddRange([(byte)ss, (byte)se, 0]);
            Marker(0xDA, [.. sos]);
            var bits = new BitWriter(ms);
            var previous = new int[components];
            for (var by = 0; by < bh; by++)
                for (var bx = 0; bx < bw; bx++)
                    foreach (var c in comps)
                    {
                        if (dc)
                        {
                            var value = 8 * (sample(bx, by, c) - 128);   // DC of a flat block after the level shift
                            var diff = value - previous[c];
                            previous[c] = value;
                            var category = diff == 0 ? 0 : 32 - int.LeadingZeroCount(Math.Abs(diff));
                            bits.Write(category, 4);
                            if (category > 0) bits.Write(diff > 0 ? diff : diff + (1 << category) - 1, category);
                        }
                        if (ac) bits.Write(0, 1);   // EOB (EOB0 in a progressive AC scan: this block only)
                    }
            bits.Flush();
        }
        var all = Enumerable.Range(0, components).ToArray();
        if (!progressive) Scan(all, 0, 63, dc: true, ac: true);
        else
        {
            Scan(all, 0, 0, dc: true, ac: false);
            foreach (var c in all) Scan([c], 1, 63, dc: false, ac: true);
        }
        ms.Write([0xFF, 0xD9]);
        return ms.ToArray();
    }

    public static byte[] CmykJpeg(bool progressive = false) =>
        FlatJpeg(64, 48, 4, progressive, (bx, by, c) => (byte)(40 + 25 * ((bx + 2 * by + c) % 8)));

    public static byte[] ProgressiveJpeg() =>
        FlatJpeg(64, 48, 3, progressive: true, (bx, by, c) => c == 0 ? (byte)(30 + 28 * ((bx + by) % 8)) : (byte)(128 + 10 * (c == 1 ? bx % 3 : by % 3)));

    sealed class BitWriter(Stream stream)
    {
        int _buffer, _count;

        public void Write(int value, int length)
        {
            for (var i = length - 1; i >= 0; i--)
            {
                _buffer = (_buffer << 1) | ((value >> i) & 1);
                if (++_count == 8) Emit();
            }
        }

        public void Flush()
        {
            while (_count != 0) Write(1, 1);   // pad with 1-bits
        }

        void Emit()
        {
            stream.WriteByte((byte)_buffer);
            if (_buffer == 0xFF) stream.WriteByte(0);   // byte stuffing
            (_buffer, _count) = (0, 0);
        }
    }

    // ---- GIF ---------------------------------------------------------------------------------------------------

    /// <summary>A GIF with a <paramref name="width"/> x <paramref name="height"/> logical screen and
    /// <paramref name="frames"/> 1x1 frames (15 bytes each).</summary>
    public static byte[] Gif(int width, int height, int frames)
    {
        using var ms = new MemoryStream();
        ms.Write("GIF89a"u8);
        Span<byte> le = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(le, (ushort)width);
        ms.Write(le);
        BinaryPrimitives.WriteUInt16LittleEndian(le, (ushort)height);
        ms.Write(le);
        ms.Write([0x80, 0, 0, 0, 0, 0, 255, 255, 255]);   // global table of 2 colours: black, white
        // Descriptor at (0, 0), 1x1, no local table; LZW minimum code size 2; codes clear (4), 0, end (5) in 3 bits.
        byte[] frame = [0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0];
        for (var i = 0; i < frames; i++) ms.Write(frame);
        ms.WriteByte(0x3B);
        return ms.ToArray();
    }

    // ---- WebP --------------------------------------------------------------------------------------------------

    static byte[] RiffChunk(string type, ReadOnlySpan<byte> data)
    {
        var chunk = new byte[8 + data.Length + (data.Length & 1)];
        Encoding.ASCII.GetBytes(type, chunk.AsSpan(0, 4));
        BinaryPrimitives.WriteInt32LittleEndian(chunk.AsSpan(4), data.Length);
        data.CopyTo(chunk.AsSpan(8));
        return chunk;
    }

    static byte[] Riff(params byte[][] chunks)
    {
        var body = chunks.SelectMany(c => c).ToArray();
        var riff = new byte[12 + body.Length];
        "RIFF"u8.CopyTo(riff);
        BinaryPrimitives.WriteInt32LittleEndian(riff.AsSpan(4), 4 + body.Length);
        "WEBP"u8.CopyTo(riff.AsSpan(8));
        body.CopyTo(riff, 12);
        return riff;
    }

    static void Write24(Span<byte> span, int value)
    {
        span[0] = (byte)value;
        span[1] = (byte)(value >> 8);
        span[2] = (byte)(value >> 16);
    }

    /// <summary>The VP8L chunk (header included) of a lossless WebP of a small image.</summary>
    static byte[] Vp8lChunk(int size)
    {
        using var image = TestImages.Make(9, size, size);
        using var ms = new MemoryStream();
        image.SaveAsWebp(ms, new WebpEncoder { FileFormat = WebpFileFormatType.Lossless });
        var webp = ms.ToArray();
        for (var at = 12; at + 8 <= webp.Length;)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(webp.AsSpan(at + 4));
            if (webp.AsSpan(at, 4).SequenceEqual("VP8L"u8)) return webp[at..(at + 8 + length + (length & 1))];
            at += 8 + length + (length & 1);
        }
        throw new InvalidOperationException("ImageSharp wrote no VP8L chunk.");
    }

    static byte[] Vp8x(byte flags, int width, int height)
    {
        var d = new byte[10];
        d[0] = flags;
        Write24(d.AsSpan(4), width - 1);
        Write24(d.AsSpan(7), height - 1);
        return RiffChunk("VP8X", d);
    }

    /// <summary>An animated WebP (VP8X with the animation flag, ANIM, two ANMF frames of an 8x8 lossless image).</summary>
    public static byte[] AnimatedWebp()
    {
        var frame = new byte[16];
        Write24(frame.AsSpan(6), 8 - 1);
        Write24(frame.AsSpan(9), 8 - 1);
        Write24(frame.AsSpan(12), 100);   // ms
        var anmf = RiffChunk("ANMF", [.. frame, .. Vp8lChunk(8)]);
        return Riff(Vp8x(0x02, 8, 8), RiffChunk("ANIM", [255, 255, 255, 255, 0, 0]), anmf, anmf);
    }

    /// <summary>A WebP whose VP8X canvas is <paramref name="width"/> x <paramref name="height"/> around an 8x8 image, or
    /// (<paramref name="inBitstream"/>) a plain lossless WebP whose VP8L header declares that size.</summary>
    public static byte[] WebpDeclaring(int width, int height, bool inBitstream = false)
    {
        if (!inBitstream) return Riff(Vp8x(0, width, height), Vp8lChunk(8));
        var vp8l = Vp8lChunk(8);
        // After the 8-byte chunk header: signature 0x2F, then 14 bits width-1, 14 bits height-1, alpha, version (LSB first).
        var bits = BinaryPrimitives.ReadUInt32LittleEndian(vp8l.AsSpan(9));
        bits = (bits & ~0x0FFF_FFFFu) | (uint)(width - 1) | ((uint)(height - 1) << 14);
        BinaryPrimitives.WriteUInt32LittleEndian(vp8l.AsSpan(9), bits);
        return Riff(vp8l);
    }

    // ---- Formats the service does not take ---------------------------------------------------------------------

    public static byte[] Tiff() => [(byte)'I', (byte)'I', 42, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0];   // an IFD with no entries

    /// <summary>The 32-byte BigTIFF of CVE-2026-106116 in shape: version 43, an IFD offset that points at itself.</summary>
    public static byte[] BigTiff() => [(byte)'I', (byte)'I', 43, 0, 8, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0];

    /// <summary>A real BMP whose pixel-data offset is near 2 GiB (ImageSharp issue #3074).</summary>
    public static byte[] BmpWithHugeOffset()
    {
        var bmp = TestImages.Bmp(10);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(10), 0x7FFF_FFF0);
        return bmp;
    }

    public static byte[] Svg() => Encoding.UTF8.GetBytes(
        """<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">""" +
        """<image xlink:href="file:///etc/passwd" width="64" height="64"/><image href="http://169.254.169.254/latest/meta-data/"/></svg>""");

    /// <summary>An ISO-BMFF ftyp box that says HEIC, then a meta box of junk.</summary>
    public static byte[] FakeHeic() =>
        [0, 0, 0, 0x18, .. "ftypheic"u8, 0, 0, 0, 0, .. "mif1heic"u8, 0, 0, 0, 0x10, .. "meta"u8, 0, 0, 0, 0, 1, 2, 3, 4];

    public static byte[] Random(int seed, int length)
    {
        var bytes = new byte[length];
        new System.Random(seed).NextBytes(bytes);
        return bytes;
    }
}

/// <summary>CRC-32 (ISO-HDLC, the PNG and zlib one), table-driven.</summary>
public static class Crc32
{
    static readonly uint[] Table = [.. Enumerable.Range(0, 256).Select(n =>
    {
        var c = (uint)n;
        for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    })];

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        var c = 0xFFFFFFFFu;
        foreach (var b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}

/// <summary>What came back, from HttpClient or a raw socket.</summary>
public sealed record Reply(int Status, string? MediaType, string Body, IReadOnlyDictionary<string, string> Headers)
{
    public static async Task<Reply> FromAsync(HttpResponseMessage response)
    {
        using (response)
        {
            var headers = response.Headers.Concat(response.Content.Headers)
                .ToDictionary(h => h.Key, h => string.Join(", ", h.Value), StringComparer.OrdinalIgnoreCase);
            return new Reply((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType,
                await response.Content.ReadAsStringAsync(), headers);
        }
    }
}

/// <summary>
/// HTTP/1.1 written by hand on a socket, for what HttpClient would clean up first: dot segments and encoded
/// slashes in paths, a body whose framing lies. Sends Connection: close and reads to the end.
/// </summary>
public static class RawHttp
{
    public static async Task<Reply> SendAsync(Uri server, string method, string target, IEnumerable<string>? headers = null,
        byte[]? body = null, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port, cts.Token);
        var stream = tcp.GetStream();
        var head = new StringBuilder($"{method} {target} HTTP/1.1\r\nHost: {server.Host}:{server.Port}\r\nConnection: close\r\n");
        foreach (var h in headers ?? []) head.Append(h).Append("\r\n");
        if (body is not null && !(headers ?? []).Any(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)))
            head.Append($"Content-Length: {body.Length}\r\n");
        head.Append("\r\n");
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), cts.Token);
        if (body is not null)
        {
            try { await stream.WriteAsync(body, cts.Token); }
            catch (IOException) { }   // the server may answer and close before reading it all
        }
        using var all = new MemoryStream();
        try { await stream.CopyToAsync(all, cts.Token); }
        catch (IOException) { }   // a reset after the answer
        return Parse(all.ToArray());
    }

    static Reply Parse(byte[] bytes)
    {
        var text = Encoding.Latin1.GetString(bytes);
        var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        if (end < 0) throw new InvalidDataException($"No complete HTTP answer: '{text}'");
        var lines = text[..end].Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1]);
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).GroupBy(p => p[0].Trim(), StringComparer.OrdinalIgnoreCase)
            .ToDictionary(g => g.Key, g => string.Join(", ", g.Select(p => p[1].Trim())), StringComparer.OrdinalIgnoreCase);
        var body = bytes.AsSpan(end + 4).ToArray();
        if (headers.TryGetValue("Transfer-Encoding", out var te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
            body = Dechunk(body);
        headers.TryGetValue("Content-Type", out var type);
        return new Reply(status, type?.Split(';')[0].Trim(), Encoding.UTF8.GetString(body), headers);
    }

    static byte[] Dechunk(byte[] body)
    {
        using var ms = new MemoryStream();
        var at = 0;
        while (at < body.Length)
        {
            var lineEnd = body.AsSpan(at).IndexOf("\r\n"u8);
            if (lineEnd < 0) break;
            var size = Convert.ToInt32(Encoding.ASCII.GetString(body, at, lineEnd).Split(';')[0], 16);
            if (size == 0) break;
            ms.Write(body, at + lineEnd + 2, size);
            at += lineEnd + 2 + size + 2;
        }
        return ms.ToArray();
    }
}

/// <summary>
/// Samples the process while a request runs: peak growth of the working set (native and managed: ImageSharp's
/// pool is unmanaged) and of the managed heap over their values at the start, every 2 ms, and the elapsed time.
/// The service runs in this process, so its allocations are counted.
/// </summary>
public sealed class ResourceProbe : IDisposable
{
    readonly long _workingSet0 = Environment.WorkingSet;
    readonly long _managed0 = GC.GetTotalMemory(false);
    readonly Stopwatch _watch = Stopwatch.StartNew();
    readonly Thread _thread;
    volatile bool _stop;
    long _peakWorkingSet, _peakManaged;

    public ResourceProbe()
    {
        _peakWorkingSet = _workingSet0;
        _peakManaged = _managed0;
        _thread = new Thread(() =>
        {
            while (!_stop)
            {
                Sample();
                Thread.Sleep(2);
            }
        }) { IsBackground = true, Name = "resource probe" };
        _thread.Start();
    }

    void Sample()
    {
        _peakWorkingSet = Math.Max(_peakWorkingSet, Environment.WorkingSet);
        _peakManaged = Math.Max(_peakManaged, GC.GetTotalMemory(false));
    }

    /// <summary>Peak growth in bytes and the time since the probe started.</summary>
    public (long WorkingSet, long Managed, TimeSpan Elapsed) Stop()
    {
        _stop = true;
        _thread.Join();
        Sample();
        return (_peakWorkingSet - _workingSet0, _peakManaged - _managed0, _watch.Elapsed);
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}

/// <summary>A body of <paramref name="length"/> bytes made on the fly and sent chunked (no Content-Length), so the
/// test neither holds it in memory nor lets the server refuse it by its declared length.</summary>
public sealed class GeneratedContent : HttpContent
{
    readonly long _length;

    public GeneratedContent(long length, string mediaType)
    {
        _length = length;
        Headers.ContentType = new(mediaType);
    }

    public long Sent { get; private set; }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        var block = new byte[64 * 1024];
        block[0] = 0x89;   // PNG-ish start, the rest zeros
        try
        {
            for (Sent = 0; Sent < _length; Sent += block.Length)
            {
                await stream.WriteAsync(block.AsMemory(0, (int)Math.Min(block.Length, _length - Sent)));
                block[0] = 0;
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException or ObjectDisposedException)
        {
            // The server answered 413 and closed: what we want.
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}

public static class Endpoint
{
    /// <summary>A free TCP port on 127.0.0.1 (another process could take it before use; callers retry).</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
