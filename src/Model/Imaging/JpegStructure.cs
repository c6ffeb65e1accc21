namespace AlexNet.Model.Imaging;

/// <summary>
/// What a JPEG's marker segments say about the work its decode would take, read without decoding entropy-coded
/// data. <see cref="ScanSamples"/> is the decoder's work: the sum over scans of the samples (8x8 blocks x 64, MCU
/// padding included) of the components each scan covers. ImageSharp 2.1.13 walks every block of its components
/// once per scan, even when the scan carries no data, so a 10-byte empty AC-refinement scan over a 40 Mpx frame
/// costs ~30 ms, and 1,000 of them 40 s (issue #20).
/// </summary>
internal readonly record struct JpegStructure(int Frames, int Scans, long ScanSamples, int HuffmanSegments,
    int QuantizationSegments, int Segments, bool ScanBeforeFrame)
{
    /// <summary>
    /// Walks the marker segments from SOI to EOI (or the end of the bytes). Entropy-coded data after each SOS
    /// header is skipped the way a decoder finds its end: 0xFF00 is a stuffed 0xFF, 0xFFD0-0xFFD7 are restart
    /// markers inside the scan, 0xFF fill bytes may precede a marker, and any other 0xFFxx ends the scan. Bytes
    /// between segments that are not a marker are skipped up to the next 0xFF, as ImageSharp does, so every marker
    /// the decoder would act on is counted. A segment whose length runs past the end stops the walk (nothing
    /// after it can be decoded). Linear in the length; allocates nothing.
    /// </summary>
    public static JpegStructure Read(ReadOnlySpan<byte> b)
    {
        int frames = 0, scans = 0, dht = 0, dqt = 0, segments = 0;
        long samples = 0;
        var scanBeforeFrame = false;
        // The (last) frame's components: id, blocks (MCU-padded). Nf is at most 255 by the standard.
        Span<byte> ids = stackalloc byte[256];
        Span<long> blocks = stackalloc long[256];
        var components = 0;

        var p = b.Length >= 2 && b[0] == 0xFF && b[1] == 0xD8 ? 2 : b.Length;
        while (p < b.Length)
        {
            if (b[p] != 0xFF)
            {
                var next = b[p..].IndexOf((byte)0xFF);
                if (next < 0) break;
                p += next;
                continue;
            }
            if (p + 1 >= b.Length) break;
            var m = b[p + 1];
            if (m == 0xFF) { p++; continue; }                                     // fill byte before a marker
            p += 2;
            if (m is 0x00 or 0x01 or 0xD8 or (>= 0xD0 and <= 0xD7)) continue;    // no length: stuffing, TEM, SOI, RSTn
            if (m == 0xD9) break;                                                 // EOI: the decoder stops here
            if (p + 2 > b.Length) break;
            var length = (b[p] << 8) | b[p + 1];
            if (length < 2 || p + length > b.Length) break;
            var segment = b.Slice(p + 2, length - 2);
            p += length;
            segments++;

            switch (m)
            {
                case 0xC4: dht++; break;
                case 0xDB: dqt++; break;
                case >= 0xC0 and <= 0xCF and not 0xC8 and not 0xCC:              // SOF0-SOF15 (C4 DHT, C8 JPG, CC DAC are not frames)
                    frames++;
                    components = ReadFrame(segment, ids, blocks);
                    break;
                case 0xDA:
                    scans++;
                    if (frames == 0) scanBeforeFrame = true;
                    samples += SamplesOf(segment, ids[..components], blocks[..components]);
                    p = SkipEntropyCodedData(b, p);
                    break;
            }
        }
        return new JpegStructure(frames, scans, samples, dht, dqt, segments, scanBeforeFrame);
    }

    /// <summary>SOFn: P, Y (2), X (2), Nf, then Nf x (Ci, HiVi, Tqi). Returns the number of components read.</summary>
    static int ReadFrame(ReadOnlySpan<byte> s, Span<byte> ids, Span<long> blocks)
    {
        if (s.Length < 6) return 0;
        int height = (s[1] << 8) | s[2], width = (s[3] << 8) | s[4];
        var n = Math.Min(s[5], (s.Length - 6) / 3);
        int hmax = 1, vmax = 1;
        for (var i = 0; i < n; i++)
        {
            hmax = Math.Max(hmax, s[7 + 3 * i] >> 4);
            vmax = Math.Max(vmax, s[7 + 3 * i] & 15);
        }
        long mcusPerLine = (width + 8 * hmax - 1) / (8 * hmax), mcusPerColumn = (height + 8 * vmax - 1) / (8 * vmax);
        for (var i = 0; i < n; i++)
        {
            ids[i] = s[6 + 3 * i];
            int h = Math.Max(1, s[7 + 3 * i] >> 4), v = Math.Max(1, s[7 + 3 * i] & 15);
            blocks[i] = mcusPerLine * h * mcusPerColumn * v;
        }
        return n;
    }

    /// <summary>SOS: Ns, then Ns x (Csj, TdjTaj), Ss, Se, AhAl. Samples of the frame components the scan names.</summary>
    static long SamplesOf(ReadOnlySpan<byte> s, ReadOnlySpan<byte> ids, ReadOnlySpan<long> blocks)
    {
        if (s.Length < 1) return 0;
        var n = Math.Min(s[0], (s.Length - 1) / 2);
        long total = 0;
        for (var j = 0; j < n; j++)
        {
            var k = ids.IndexOf(s[1 + 2 * j]);
            total += 64 * (k >= 0 ? blocks[k] : MaxBlocks(blocks));   // an unknown id: charge the largest component
        }
        return total;
    }

    static long MaxBlocks(ReadOnlySpan<long> blocks)
    {
        long max = 0;
        foreach (var x in blocks) max = Math.Max(max, x);
        return max;
    }

    /// <summary>From just after an SOS header to the marker that ends its entropy-coded data (or the end).</summary>
    static int SkipEntropyCodedData(ReadOnlySpan<byte> b, int p)
    {
        while (p < b.Length)
        {
            var next = b[p..].IndexOf((byte)0xFF);
            if (next < 0) return b.Length;
            p += next;
            if (p + 1 >= b.Length) return b.Length;
            var m = b[p + 1];
            if (m == 0x00 || m is >= 0xD0 and <= 0xD7) { p += 2; continue; }   // stuffed 0xFF, restart marker
            if (m == 0xFF) { p++; continue; }                                   // fill: look at the next 0xFF
            return p;
        }
        return b.Length;
    }
}
