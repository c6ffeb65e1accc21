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

/// <summary>One query's buffers: its aligned fp32 copy and the forms a codec prepares from it (fp32 for fp16's split
/// layout, int16 for int8's). Fresh pinned arrays cost ~20 us each, so they are kept: a single search uses the calling
/// thread's <see cref="ForThisThread"/> (a search runs on one thread, which holds its query until it returns); a search
/// of several queries at once keeps one set a query (<see cref="Many"/>).</summary>
sealed class QueryBuffers
{
    [ThreadStatic] static QueryBuffers? t_one;
    [ThreadStatic] static List<QueryBuffers>? t_many;

    float[]? _values;
    /// <summary>A codec's fp32 form of the query (<see cref="Codecs.Float16Codec"/>).</summary>
    public float[]? Floats;
    /// <summary>A codec's int16 form of the query (<see cref="Codecs.Int8Codec"/>).</summary>
    public short[]? Shorts;

    /// <summary>The calling thread's buffers for one search.</summary>
    public static QueryBuffers ForThisThread => t_one ??= new();

    /// <summary>The calling thread's buffers for <paramref name="n"/> queries searched together (none of them
    /// <see cref="ForThisThread"/>), held until its next call.</summary>
    public static List<QueryBuffers> Many(int n)
    {
        var many = t_many ??= [];
        while (many.Count < n) many.Add(new());
        return many;
    }

    /// <summary>An aligned fp32 copy of the query (what the fp32 kernel and the short list's re-rank read).</summary>
    public Aligned<float> Values(ReadOnlySpan<float> query)
    {
        var values = Aligned<float>.In(ref _values, query.Length);
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
