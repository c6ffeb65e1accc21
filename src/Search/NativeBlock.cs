using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AlexNet.Search;

/// <summary>
/// A fixed-length array in native memory, 2 MB aligned and, on Linux, advised as transparent huge pages
/// (MADV_HUGEPAGE; the system default here is "madvise"), for the row blocks of <see cref="RowBlocks{T}"/>. A scan
/// over 4 KB pages misses the TLB every 4 KB; over huge pages every 2 MB: on two Zen 4 cores an fp16 scan went from
/// 29 to 34 GB/s and a plain streaming sum from 34 to 36 GB/s. Pages are committed when first written, so a block
/// costs only the rows it holds. Freed by <see cref="Dispose"/> or, failing that, by the finalizer; its size is
/// reported to the GC as memory pressure so unreferenced indexes are collected.
/// </summary>
public sealed class NativeBlock<T> : IDisposable where T : unmanaged
{
    const int HugePage = 2 << 20;
    const int MadviseHugePage = 14;   // MADV_HUGEPAGE, linux/mman.h

    nint _allocation;
    readonly nint _start;
    readonly long _bytes;

    public NativeBlock(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Length = length;
        _bytes = (long)length * Unsafe.SizeOf<T>() + HugePage;   // room to align the start
        _allocation = Marshal.AllocHGlobal((nint)_bytes);
        _start = (_allocation + HugePage - 1) & ~(nint)(HugePage - 1);
        if (OperatingSystem.IsLinux() && length > 0)
            _ = Libc.madvise(_start, (nuint)((long)length * Unsafe.SizeOf<T>()), MadviseHugePage);   // advice only: failure is fine
        GC.AddMemoryPressure(_bytes);
    }

    public int Length { get; }

    /// <summary>The values; valid while this block is alive and not disposed (the owner keeps it reachable).</summary>
    public Span<T> Span
    {
        get
        {
            ObjectDisposedException.ThrowIf(_allocation == 0, this);
            return MemoryMarshal.CreateSpan(ref Unsafe.AddByteOffset(ref Unsafe.NullRef<T>(), _start), Length);
        }
    }

    public Span<T> AsSpan(int start, int length) => Span.Slice(start, length);

    /// <summary>A new block of <paramref name="length"/> holding this one's values (the rest unwritten).</summary>
    public NativeBlock<T> Grow(int length)
    {
        var grown = new NativeBlock<T>(length);
        Span[..Math.Min(Length, length)].CopyTo(grown.Span);
        return grown;
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    ~NativeBlock() => Free();

    void Free()
    {
        var allocation = Interlocked.Exchange(ref _allocation, 0);
        if (allocation == 0) return;
        Marshal.FreeHGlobal(allocation);
        GC.RemoveMemoryPressure(_bytes);
    }
}

static class Libc
{
    [DllImport("libc", SetLastError = true)]
    public static extern int madvise(nint address, nuint length, int advice);
}
