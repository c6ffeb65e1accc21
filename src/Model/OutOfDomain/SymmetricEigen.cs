using System.Numerics.Tensors;

namespace AlexNet.Model.OutOfDomain;

/// <summary>Eigenvalues and eigenvectors of a symmetric matrix, deterministic, no library: all of them for a small matrix
/// by cyclic Jacobi rotations (Golub and Van Loan, section 8.5), or the largest few of a larger one by subspace iteration
/// (Golub and Van Loan, section 8.2.4) with a Rayleigh-Ritz step.</summary>
public static class SymmetricEigen
{
    /// <summary>The <paramref name="k"/> largest eigenvalues (descending) of the symmetric d x d matrix
    /// <paramref name="matrix"/> (row-major) and their eigenvectors (k rows of d). Subspace iteration on k + 8 vectors
    /// from a fixed seed: 300 steps of d^2 (k + 8) multiply-adds, about 0.1 s for d = 384; the top k converge as
    /// (lambda_{k+9} / lambda_k)^steps.</summary>
    public static (double[] Values, double[] Vectors) Top(double[] matrix, int d, int k, int steps = 300)
    {
        if (matrix.Length != d * d) throw new ArgumentException($"{matrix.Length} values for a {d} x {d} matrix.");
        var m = Math.Min(d, k + 8);
        var rng = new Random(12345);
        var q = new double[m * d];                     // m rows of d
        for (var i = 0; i < q.Length; i++) q[i] = rng.NextDouble() - 0.5;
        Orthonormalize(q, m, d);
        var z = new double[m * d];
        for (var step = 0; step < steps; step++)
        {
            Multiply(matrix, q, z, m, d);              // z_i = A q_i
            (q, z) = (z, q);
            Orthonormalize(q, m, d);
        }
        Multiply(matrix, q, z, m, d);
        var h = new double[m, m];                      // Q^T A Q
        for (var i = 0; i < m; i++)
            for (var j = 0; j < m; j++) h[i, j] = TensorPrimitives.Dot<double>(q.AsSpan(i * d, d), z.AsSpan(j * d, d));
        for (var i = 0; i < m; i++)
            for (var j = 0; j < i; j++) h[i, j] = h[j, i] = (h[i, j] + h[j, i]) / 2;
        var (values, w) = Decompose(h);
        var kk = Math.Min(k, m);
        var vectors = new double[kk * d];
        for (var c = 0; c < kk; c++)
            for (var i = 0; i < m; i++)
            {
                var target = vectors.AsSpan(c * d, d);
                TensorPrimitives.MultiplyAdd<double>(q.AsSpan(i * d, d), w[i, c], target, target);
            }
        return (values[..kk], vectors);
    }

    static void Multiply(double[] a, double[] q, double[] z, int m, int d)
    {
        for (var i = 0; i < m; i++)
        {
            var qi = q.AsSpan(i * d, d);
            for (var r = 0; r < d; r++) z[i * d + r] = TensorPrimitives.Dot<double>(a.AsSpan(r * d, d), qi);
        }
    }

    /// <summary>Modified Gram-Schmidt on m rows of d; a row that vanishes is replaced by a unit vector.</summary>
    static void Orthonormalize(double[] q, int m, int d)
    {
        for (var i = 0; i < m; i++)
        {
            var qi = q.AsSpan(i * d, d);
            for (var j = 0; j < i; j++)
            {
                var qj = q.AsSpan(j * d, d);
                TensorPrimitives.MultiplyAdd<double>(qj, -TensorPrimitives.Dot<double>(qi, qj), qi, qi);
            }
            var norm = Math.Sqrt(TensorPrimitives.Dot<double>(qi, qi));
            if (norm < 1e-150)
            {
                qi.Clear();
                qi[i % d] = 1;
                i--;                                   // orthogonalise the replacement too
                continue;
            }
            TensorPrimitives.Divide<double>(qi, norm, qi);
        }
    }

    /// <summary>Eigenvalues in descending order and the eigenvectors as the columns of a matrix in the same order.
    /// <paramref name="matrix"/> must be symmetric; it is not changed.</summary>
    public static (double[] Values, double[,] Vectors) Decompose(double[,] matrix)
    {
        var n = matrix.GetLength(0);
        if (matrix.GetLength(1) != n) throw new ArgumentException("The matrix is not square.");
        var a = (double[,])matrix.Clone();
        var v = new double[n, n];
        for (var i = 0; i < n; i++) v[i, i] = 1;
        for (var sweep = 0; sweep < 100; sweep++)
        {
            double off = 0, total = 0;
            for (var p = 0; p < n; p++)
                for (var q = 0; q < n; q++)
                {
                    total += a[p, q] * a[p, q];
                    if (p != q) off += a[p, q] * a[p, q];
                }
            if (off <= 1e-24 * total || off == 0) break;
            for (var p = 0; p < n - 1; p++)
                for (var q = p + 1; q < n; q++)
                {
                    var apq = a[p, q];
                    if (Math.Abs(apq) < 1e-300) continue;
                    var theta = (a[q, q] - a[p, p]) / (2 * apq);
                    var t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0) t = 1;
                    var c = 1 / Math.Sqrt(t * t + 1);
                    var s = t * c;
                    for (var k = 0; k < n; k++)   // columns p and q
                    {
                        var akp = a[k, p];
                        var akq = a[k, q];
                        a[k, p] = c * akp - s * akq;
                        a[k, q] = s * akp + c * akq;
                    }
                    for (var k = 0; k < n; k++)   // rows p and q
                    {
                        var apk = a[p, k];
                        var aqk = a[q, k];
                        a[p, k] = c * apk - s * aqk;
                        a[q, k] = s * apk + c * aqk;
                    }
                    for (var k = 0; k < n; k++)
                    {
                        var vkp = v[k, p];
                        var vkq = v[k, q];
                        v[k, p] = c * vkp - s * vkq;
                        v[k, q] = s * vkp + c * vkq;
                    }
                }
        }
        var order = Enumerable.Range(0, n).OrderByDescending(i => a[i, i]).ThenBy(i => i).ToArray();
        var values = order.Select(i => a[i, i]).ToArray();
        var vectors = new double[n, n];
        for (var j = 0; j < n; j++)
            for (var i = 0; i < n; i++) vectors[i, j] = v[i, order[j]];
        return (values, vectors);
    }
}
