using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace AlexNet.Search;

/// <summary>n values starting on a 64-byte boundary of a pinned array (so they stay there), as the rows do: a vector
/// load then never straddles two cache lines. A struct, so a codec can hold it (a span cannot live in a field).</summary>
readonly struct Aligned<T>(T[] array, int offset, int length) where T : unmanaged
{
    public Span<T> Span => new(array, offset, length);

    /// <summary>n values in <paramref name="cache"/>, replaced by a larger pinned array when it is too short.</summary>
    public static Aligned<T> In(ref T[]? cache, int n)
    {
        var size = Unsafe.SizeOf<T>();
        if (cache is null || cache.Length < n + 64 / size) cache = GC.AllocateUninitializedArray<T>(n + 64 / size, pinned: true);
        var offset = (int)((64 - Marshal.UnsafeAddrOfPinnedArrayElement(cache, 0) % 64) % 64) / size;
        return new(cache, offset, n);
    }
}

/// <summary>The query's buffers, kept by the calling thread for its next search: a search runs on one thread, which
/// holds its query until it returns, and fresh pinned arrays cost ~20 us each. The codecs keep their own forms the
/// same way.</summary>
static class QueryBuffers
{
    [ThreadStatic] static float[]? t_values;

    /// <summary>An aligned fp32 copy of the query (what the fp32 kernel and the short list's re-rank read).</summary>
    public static Aligned<float> Values(ReadOnlySpan<float> query)
    {
        var values = Aligned<float>.In(ref t_values, query.Length);
        query.CopyTo(values.Span);
        return values;
    }
}

/// <summary>Four results of a four-row kernel, on the stack (an inline array, unlike stackalloc, lets the codec's
/// call inline into the scan loop).</summary>
[InlineArray(4)]
struct Four<T>
{
    T _first;
}
