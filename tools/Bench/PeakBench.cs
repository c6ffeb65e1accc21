using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace AlexNet.Bench;

/// <summary>One multiply-accumulate kernel's measured rate on all the threads; null where the CPU lacks it.</summary>
/// <param name="MacsPerStep">Multiply-accumulates one step of the sequence does (8 for a ymm FMA, 32 for a
/// ymm vpdpbusd or a ymm vpmaddubsw+vpmaddwd+vpaddd).</param>
/// <param name="Precision">"fp32", "int8", or "int16" for the machine-code check row.</param>
public sealed record Peak(string Name, string Instructions, string Precision, int MacsPerStep, double? GmacPerSecond)
{
    public bool Int8 => Precision == "int8";
}

/// <summary>
/// Multiply-accumulate peaks of this CPU on all cores: one thread per core, each running 12 independent accumulator
/// chains (enough to hide the latency of every instruction here on current x86 cores), accumulators summed into a
/// static sink at the end so that the JIT cannot drop the work. fp32 FMA (ymm, and zmm with AVX-512F), int8 vpdpbusd
/// (ymm with AVX-VNNI, zmm with AVX-512 VNNI) and the sequences ONNX Runtime's MLAS runs without VNNI: u8 x s8 as
/// vpmaddubsw + vpmaddwd(ones) + vpaddd (AVX2 ymm, AVX-512BW zmm), and u8 x u8 widened to int16 as vpmaddwd + vpaddd.
/// The AVX2 sequences feed each chain's accumulator back as the next multiply's input (as vpdpbusd and FMA do by
/// their nature), so nothing in the loop is invariant and every multiply is done.
/// </summary>
public static class PeakBench
{
    const int Chains = 12;
    static volatile int _sink;

    public static void Run(double seconds, int threads)
    {
        Console.WriteLine($"CPU: {CpuName()}; {threads} threads, {seconds:F1} s per kernel (best of windows of about 0.5 s, kernels in turn); AVX2 {Avx2.IsSupported}, FMA {Fma.IsSupported}, " +
            $"AVX-512F {Avx512F.IsSupported}, AVX-512BW {Avx512BW.IsSupported}, AVX-VNNI {AvxVnni.IsSupported}, AVX-512 VNNI {Avx512Vnni}");
        var peaks = Measure(seconds, threads);
        foreach (var p in peaks)
        {
            var rate = p.GmacPerSecond is { } g
                ? p.Precision == "fp32" ? $"{g,8:F1} GMAC/s = {2 * g,7:F1} GFLOP/s" : $"{g,8:F1} GMAC/s ({p.Precision})"
                : "not on this CPU";
            Console.WriteLine($"{p.Name,-26} {p.Instructions,-34} {p.MacsPerStep,3} MAC/step  {rate}");
        }
        var fp32 = Fp32(peaks);
        var mlas = MlasInt8(peaks);
        var best = peaks.Where(p => p.Int8 && p.GmacPerSecond is not null).MaxBy(p => p.GmacPerSecond);
        if (fp32?.GmacPerSecond is { } f && mlas?.GmacPerSecond is { } m && best?.GmacPerSecond is { } b)
        {
            Console.WriteLine($"int8 / fp32 MAC peak: {m / f:F2}x with MLAS's kernel here ({mlas.Name} against {fp32.Name}); " +
                $"best int8 sequence {best.Name}: {b / f:F2}x");
        }
    }

    /// <summary>
    /// Every kernel this CPU has, on <paramref name="threads"/> threads at once, in windows of about half a second
    /// taken in turn (kernel 1, 2, ..., then again), <paramref name="seconds"/> per kernel in all; each kernel's best
    /// window counts, since other work on the machine can only lower a window's rate, and taking turns spreads a
    /// drifting load over all kernels alike.
    /// </summary>
    public static IReadOnlyList<Peak> Measure(double seconds, int threads)
    {
        var linux = OperatingSystem.IsLinux();
        (string Name, string Instructions, string Precision, int Macs, bool Supported, Func<long, int> Kernel)[] kernels =
        [
            ("fp32 FMA ymm", "vfmadd231ps ymm", "fp32", 8, Fma.IsSupported, Fma256),
            ("fp32 FMA zmm", "vfmadd231ps zmm", "fp32", 16, Avx512F.IsSupported, Fma512),
            ("int8 u8s8 AVX2 ymm", "vpmaddubsw+vpmaddwd+vpaddd ymm", "int8", 32, Avx2.IsSupported, U8S8Avx2),
            ("int8 u8u8 AVX2 ymm", "vpmaddwd+vpaddd ymm (int16)", "int8", 16, Avx2.IsSupported, U8U8Avx2),
            ("int8 u8s8 AVX-512BW zmm", "vpmaddubsw+vpmaddwd+vpaddd zmm", "int8", 64, Avx512BW.IsSupported, U8S8Avx512),
            ("int16 vpmaddwd ymm, code", "vpmaddwd ymm (machine code; a check)", "int16", 16, Avx2.IsSupported && linux, NativeVnni512.RunMaddwd256),
            ("int8 VNNI ymm", "vpdpbusd ymm", "int8", 32, AvxVnni.IsSupported, Vnni256),
            ("int8 VNNI zmm", "vpdpbusd zmm (machine code)", "int8", 64, Avx512Vnni && linux, NativeVnni512.Run),
        ];
        var best = new double?[kernels.Length];
        for (var k = 0; k < kernels.Length; k++)
            if (kernels[k].Supported) _sink ^= kernels[k].Kernel(1000);   // compiled and warm before any clock starts
        var windows = Math.Max(1, (int)Math.Round(seconds / 0.5));
        for (var w = 0; w < windows; w++)
            for (var k = 0; k < kernels.Length; k++)
                if (kernels[k].Supported)
                    best[k] = Math.Max(best[k] ?? 0, Window(seconds / windows, threads, kernels[k].Macs, kernels[k].Kernel));
        return [.. kernels.Select((x, k) => new Peak(x.Name, x.Instructions, x.Precision, x.Macs, best[k]))];
    }

    /// <summary>The fp32 kernel MLAS's SGEMM and NCHWc convolutions use here: zmm with AVX-512F, else ymm FMA.</summary>
    public static Peak? Fp32(IReadOnlyList<Peak> peaks) =>
        peaks.FirstOrDefault(p => p.Name == (Avx512F.IsSupported ? "fp32 FMA zmm" : "fp32 FMA ymm"));

    /// <summary>
    /// The u8 x s8 kernel MLAS picks from the CPU's feature bits (platform.cpp: AVX2, then AVX-VNNI, then AVX-512BW
    /// "Core", then AVX-512 VNNI, each replacing the one before), for QGEMM and the symmetric NHWC convolution alike.
    /// </summary>
    public static Peak? MlasInt8(IReadOnlyList<Peak> peaks)
    {
        var core = Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported;   // MLAS's "AVX512 core"
        var name = core && Avx512Vnni ? "int8 VNNI zmm"
            : core ? "int8 u8s8 AVX-512BW zmm"
            : AvxVnni.IsSupported ? "int8 VNNI ymm"
            : "int8 u8s8 AVX2 ymm";
        return peaks.FirstOrDefault(p => p.Name == name);
    }

    /// <summary>AVX-512 VNNI: CPUID leaf 7 ECX bit 11, with the OS saving zmm state (Avx512F). .NET 10 has no managed
    /// API for the zmm form (AvxVnni.V512 arrives in .NET 11), so <see cref="NativeVnni512"/> runs it as machine code.</summary>
    public static bool Avx512Vnni => Avx512F.IsSupported && (X86Base.CpuId(7, 0).Ecx & (1 << 11)) != 0;

    static string CpuName()
    {
        try
        {
            var info = File.ReadAllLines("/proc/cpuinfo");
            string Field(string key) => info.FirstOrDefault(l => l.StartsWith(key))?.Split(':', 2)[1].Trim() ?? "?";
            return $"{Field("model name")} (family {Field("cpu family")} model {Field("model\t")})";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>GMAC/s of <paramref name="kernel"/> (loops of 12 steps) on <paramref name="threads"/> threads at once.</summary>
    static double Window(double seconds, int threads, int macsPerStep, Func<long, int> kernel)
    {
        const long Loops = 1 << 16;
        var counts = new long[threads];
        using var start = new Barrier(threads + 1);
        var stop = 0L;
        var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            var s = 0;
            long n = 0;
            while (Volatile.Read(ref stop) == 0) { s ^= kernel(Loops); n += Loops; }
            counts[t] = n;
            _sink ^= s;
        }) { IsBackground = true }).ToArray();
        foreach (var w in workers) w.Start();
        start.SignalAndWait();
        var clock = Stopwatch.StartNew();
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
        Volatile.Write(ref stop, 1);
        foreach (var w in workers) w.Join();
        var elapsed = clock.Elapsed.TotalSeconds;   // each thread finishes its last block after stop: counted, and timed
        return counts.Sum() * Chains * (double)macsPerStep / elapsed / 1e9;
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static int Fma256(long n)
    {
        var (m, c) = (Vector256.Create(0.999999f), Vector256.Create(1e-6f));
        Vector256<float> a0 = Vector256.Create(1f), a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c,
            a6 = a5 + c, a7 = a6 + c, a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c;
        for (long i = 0; i < n; i++)
        {
            a0 = Fma.MultiplyAdd(a0, m, c); a1 = Fma.MultiplyAdd(a1, m, c); a2 = Fma.MultiplyAdd(a2, m, c);
            a3 = Fma.MultiplyAdd(a3, m, c); a4 = Fma.MultiplyAdd(a4, m, c); a5 = Fma.MultiplyAdd(a5, m, c);
            a6 = Fma.MultiplyAdd(a6, m, c); a7 = Fma.MultiplyAdd(a7, m, c); a8 = Fma.MultiplyAdd(a8, m, c);
            a9 = Fma.MultiplyAdd(a9, m, c); a10 = Fma.MultiplyAdd(a10, m, c); a11 = Fma.MultiplyAdd(a11, m, c);
        }
        return (int)Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static int Fma512(long n)
    {
        var (m, c) = (Vector512.Create(0.999999f), Vector512.Create(1e-6f));
        Vector512<float> a0 = Vector512.Create(1f), a1 = a0 + c, a2 = a1 + c, a3 = a2 + c, a4 = a3 + c, a5 = a4 + c,
            a6 = a5 + c, a7 = a6 + c, a8 = a7 + c, a9 = a8 + c, a10 = a9 + c, a11 = a10 + c;
        for (long i = 0; i < n; i++)
        {
            a0 = Avx512F.FusedMultiplyAdd(a0, m, c); a1 = Avx512F.FusedMultiplyAdd(a1, m, c); a2 = Avx512F.FusedMultiplyAdd(a2, m, c);
            a3 = Avx512F.FusedMultiplyAdd(a3, m, c); a4 = Avx512F.FusedMultiplyAdd(a4, m, c); a5 = Avx512F.FusedMultiplyAdd(a5, m, c);
            a6 = Avx512F.FusedMultiplyAdd(a6, m, c); a7 = Avx512F.FusedMultiplyAdd(a7, m, c); a8 = Avx512F.FusedMultiplyAdd(a8, m, c);
            a9 = Avx512F.FusedMultiplyAdd(a9, m, c); a10 = Avx512F.FusedMultiplyAdd(a10, m, c); a11 = Avx512F.FusedMultiplyAdd(a11, m, c);
        }
        return (int)Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    // vpmaddubsw (u8 x s8 -> pairs summed to int16, saturating), vpmaddwd with ones (pairs of int16 -> int32), vpaddd:
    // MLAS's MlasGemmU8S8KernelAvx2 step for 4 bytes of k. The chain's accumulator is the next step's u8 operand.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static int U8S8Avx2(long n)
    {
        var w = Vector256.Create((sbyte)3);
        var ones = Vector256.Create((short)1);
        Vector256<int> a0 = Vector256.Create(1), a1 = a0 + a0, a2 = a1 + a0, a3 = a2 + a0, a4 = a3 + a0, a5 = a4 + a0,
            a6 = a5 + a0, a7 = a6 + a0, a8 = a7 + a0, a9 = a8 + a0, a10 = a9 + a0, a11 = a10 + a0;
        for (long i = 0; i < n; i++)
        {
            a0 = Avx2.Add(a0, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a0.AsByte(), w), ones));
            a1 = Avx2.Add(a1, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a1.AsByte(), w), ones));
            a2 = Avx2.Add(a2, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a2.AsByte(), w), ones));
            a3 = Avx2.Add(a3, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a3.AsByte(), w), ones));
            a4 = Avx2.Add(a4, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a4.AsByte(), w), ones));
            a5 = Avx2.Add(a5, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a5.AsByte(), w), ones));
            a6 = Avx2.Add(a6, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a6.AsByte(), w), ones));
            a7 = Avx2.Add(a7, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a7.AsByte(), w), ones));
            a8 = Avx2.Add(a8, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a8.AsByte(), w), ones));
            a9 = Avx2.Add(a9, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a9.AsByte(), w), ones));
            a10 = Avx2.Add(a10, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a10.AsByte(), w), ones));
            a11 = Avx2.Add(a11, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a11.AsByte(), w), ones));
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    // u8 x u8 as MLAS's MlasGemmU8U8KernelAvx2 does it: both sides widened to int16 beforehand, then vpmaddwd + vpaddd.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static int U8U8Avx2(long n)
    {
        var w = Vector256.Create((short)3);
        Vector256<int> a0 = Vector256.Create(1), a1 = a0 + a0, a2 = a1 + a0, a3 = a2 + a0, a4 = a3 + a0, a5 = a4 + a0,
            a6 = a5 + a0, a7 = a6 + a0, a8 = a7 + a0, a9 = a8 + a0, a10 = a9 + a0, a11 = a10 + a0;
        for (long i = 0; i < n; i++)
        {
            a0 = Avx2.Add(a0, Avx2.MultiplyAddAdjacent(a0.AsInt16(), w)); a1 = Avx2.Add(a1, Avx2.MultiplyAddAdjacent(a1.AsInt16(), w));
            a2 = Avx2.Add(a2, Avx2.MultiplyAddAdjacent(a2.AsInt16(), w)); a3 = Avx2.Add(a3, Avx2.MultiplyAddAdjacent(a3.AsInt16(), w));
            a4 = Avx2.Add(a4, Avx2.MultiplyAddAdjacent(a4.AsInt16(), w)); a5 = Avx2.Add(a5, Avx2.MultiplyAddAdjacent(a5.AsInt16(), w));
            a6 = Avx2.Add(a6, Avx2.MultiplyAddAdjacent(a6.AsInt16(), w)); a7 = Avx2.Add(a7, Avx2.MultiplyAddAdjacent(a7.AsInt16(), w));
            a8 = Avx2.Add(a8, Avx2.MultiplyAddAdjacent(a8.AsInt16(), w)); a9 = Avx2.Add(a9, Avx2.MultiplyAddAdjacent(a9.AsInt16(), w));
            a10 = Avx2.Add(a10, Avx2.MultiplyAddAdjacent(a10.AsInt16(), w)); a11 = Avx2.Add(a11, Avx2.MultiplyAddAdjacent(a11.AsInt16(), w));
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static int U8S8Avx512(long n)
    {
        var w = Vector512.Create((sbyte)3);
        var ones = Vector512.Create((short)1);
        Vector512<int> a0 = Vector512.Create(1), a1 = a0 + a0, a2 = a1 + a0, a3 = a2 + a0, a4 = a3 + a0, a5 = a4 + a0,
            a6 = a5 + a0, a7 = a6 + a0, a8 = a7 + a0, a9 = a8 + a0, a10 = a9 + a0, a11 = a10 + a0;
        for (long i = 0; i < n; i++)
        {
            a0 = Avx512F.Add(a0, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a0.AsByte(), w), ones));
            a1 = Avx512F.Add(a1, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a1.AsByte(), w), ones));
            a2 = Avx512F.Add(a2, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a2.AsByte(), w), ones));
            a3 = Avx512F.Add(a3, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a3.AsByte(), w), ones));
            a4 = Avx512F.Add(a4, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a4.AsByte(), w), ones));
            a5 = Avx512F.Add(a5, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a5.AsByte(), w), ones));
            a6 = Avx512F.Add(a6, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a6.AsByte(), w), ones));
            a7 = Avx512F.Add(a7, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a7.AsByte(), w), ones));
            a8 = Avx512F.Add(a8, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a8.AsByte(), w), ones));
            a9 = Avx512F.Add(a9, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a9.AsByte(), w), ones));
            a10 = Avx512F.Add(a10, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a10.AsByte(), w), ones));
            a11 = Avx512F.Add(a11, Avx512BW.MultiplyAddAdjacent(Avx512BW.MultiplyAddAdjacent(a11.AsByte(), w), ones));
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    static int Vnni256(long n)
    {
        var (u, s) = (Vector256.Create((byte)200), Vector256.Create((sbyte)-3));
        Vector256<int> a0 = Vector256.Create(1), a1 = a0 + a0, a2 = a1 + a0, a3 = a2 + a0, a4 = a3 + a0, a5 = a4 + a0,
            a6 = a5 + a0, a7 = a6 + a0, a8 = a7 + a0, a9 = a8 + a0, a10 = a9 + a0, a11 = a10 + a0;
        for (long i = 0; i < n; i++)
        {
            a0 = AvxVnni.MultiplyWideningAndAdd(a0, u, s); a1 = AvxVnni.MultiplyWideningAndAdd(a1, u, s);
            a2 = AvxVnni.MultiplyWideningAndAdd(a2, u, s); a3 = AvxVnni.MultiplyWideningAndAdd(a3, u, s);
            a4 = AvxVnni.MultiplyWideningAndAdd(a4, u, s); a5 = AvxVnni.MultiplyWideningAndAdd(a5, u, s);
            a6 = AvxVnni.MultiplyWideningAndAdd(a6, u, s); a7 = AvxVnni.MultiplyWideningAndAdd(a7, u, s);
            a8 = AvxVnni.MultiplyWideningAndAdd(a8, u, s); a9 = AvxVnni.MultiplyWideningAndAdd(a9, u, s);
            a10 = AvxVnni.MultiplyWideningAndAdd(a10, u, s); a11 = AvxVnni.MultiplyWideningAndAdd(a11, u, s);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}

/// <summary>
/// The zmm vpdpbusd loop as x86-64 machine code in an executable page (System V: the loop count in rdi): twelve
/// <c>vpdpbusd zmm0..zmm11, zmm14, zmm15</c>, <c>dec rdi</c>, <c>jnz</c>, <c>vzeroupper</c>, <c>ret</c> (bytes from GNU as
/// and objdump). Only called where <see cref="PeakBench.Avx512Vnni"/> holds.
/// </summary>
static unsafe class NativeVnni512
{
    static readonly byte[] Code =
    [
        0x62, 0xd2, 0x0d, 0x48, 0x50, 0xc7, 0x62, 0xd2, 0x0d, 0x48, 0x50, 0xcf, 0x62, 0xd2, 0x0d, 0x48, 0x50, 0xd7,
        0x62, 0xd2, 0x0d, 0x48, 0x50, 0xdf, 0x62, 0xd2, 0x0d, 0x48, 0x50, 0xe7, 0x62, 0xd2, 0x0d, 0x48, 0x50, 0xef,
        0x62, 0xd2, 0x0d, 0x48, 0x50, 0xf7, 0x62, 0xd2, 0x0d, 0x48, 0x50, 0xff, 0x62, 0x52, 0x0d, 0x48, 0x50, 0xc7,
        0x62, 0x52, 0x0d, 0x48, 0x50, 0xcf, 0x62, 0x52, 0x0d, 0x48, 0x50, 0xd7, 0x62, 0x52, 0x0d, 0x48, 0x50, 0xdf,
        0x48, 0xff, 0xcf,   // dec rdi
        0x75, 0xb3,         // jnz back to the first vpdpbusd
        0xc5, 0xf8, 0x77,   // vzeroupper
        0xc3,               // ret
    ];

    /// <summary>Twelve <c>vpmaddwd ymm0..ymm11, ymm14, ymm15</c> in the same frame: runs on any AVX2 CPU, so the
    /// machine-code path is checked where zmm is missing, and its rate should match the managed u8u8 row's.</summary>
    static readonly byte[] Maddwd256 =
    [
        0xc4, 0xc1, 0x0d, 0xf5, 0xc7, 0xc4, 0xc1, 0x0d, 0xf5, 0xcf, 0xc4, 0xc1, 0x0d, 0xf5, 0xd7, 0xc4, 0xc1, 0x0d, 0xf5, 0xdf,
        0xc4, 0xc1, 0x0d, 0xf5, 0xe7, 0xc4, 0xc1, 0x0d, 0xf5, 0xef, 0xc4, 0xc1, 0x0d, 0xf5, 0xf7, 0xc4, 0xc1, 0x0d, 0xf5, 0xff,
        0xc4, 0x41, 0x0d, 0xf5, 0xc7, 0xc4, 0x41, 0x0d, 0xf5, 0xcf, 0xc4, 0x41, 0x0d, 0xf5, 0xd7, 0xc4, 0x41, 0x0d, 0xf5, 0xdf,
        0x48, 0xff, 0xcf, 0x75, 0xbf, 0xc5, 0xf8, 0x77, 0xc3,
    ];

    static delegate* unmanaged<long, void> _vnni, _maddwd;

    public static int Run(long n)
    {
        if (_vnni == null) _vnni = Load(Code);
        _vnni(n);
        return 0;
    }

    public static int RunMaddwd256(long n)
    {
        if (_maddwd == null) _maddwd = Load(Maddwd256);
        _maddwd(n);
        return 0;
    }

    /// <summary>Copies <paramref name="code"/> into a fresh page and makes it read + execute (mmap, then mprotect).</summary>
    internal static delegate* unmanaged<long, void> Load(byte[] code)
    {
        const int Read = 1, Write = 2, Exec = 4, Private = 2, Anonymous = 0x20;
        var page = Mmap(0, 4096, Read | Write, Private | Anonymous, -1, 0);
        if (page == -1) throw new InvalidOperationException($"mmap failed: errno {Marshal.GetLastPInvokeError()}");
        Marshal.Copy(code, 0, page, code.Length);
        if (Mprotect(page, 4096, Read | Exec) != 0) throw new InvalidOperationException($"mprotect failed: errno {Marshal.GetLastPInvokeError()}");
        return (delegate* unmanaged<long, void>)page;
    }

    [DllImport("libc", EntryPoint = "mmap", SetLastError = true)]
    static extern nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [DllImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    static extern int Mprotect(nint address, nuint length, int protection);
}
