namespace AlexNet.KernelCheck;

/// <summary>
/// Scalar references of the scan kernels (<see cref="AlexNet.Search.VectorKernels"/>), in double or exact integer
/// arithmetic with the query in its natural order and unscaled: what this check and Search.Tests compare the SIMD
/// kernels with. They live here, not in the library: nothing in production calls them.
/// </summary>
public static class ScalarTwins
{
    /// <summary>Reference of <c>VectorKernels.SquaredDistance</c>: sum of (x[i] - q[i])^2.</summary>
    public static double SquaredDistance(ReadOnlySpan<float> x, ReadOnlySpan<float> q)
    {
        double sum = 0;
        for (var i = 0; i < x.Length; i++) sum += ((double)x[i] - q[i]) * ((double)x[i] - q[i]);
        return sum;
    }

    /// <summary>Reference of the fp16 <c>VectorKernels.Dot</c>, with the query unscaled and in its natural order.</summary>
    public static double Dot(ReadOnlySpan<Half> x, ReadOnlySpan<float> q)
    {
        double sum = 0;
        for (var i = 0; i < x.Length; i++) sum += (double)(float)x[i] * q[i];
        return sum;
    }

    /// <summary>Reference of the uint8 <c>VectorKernels.Dot</c>, with the query in its natural order.</summary>
    public static long Dot(ReadOnlySpan<byte> u, ReadOnlySpan<short> q)
    {
        long sum = 0;
        for (var i = 0; i < u.Length; i++) sum += u[i] * q[i];
        return sum;
    }
}
