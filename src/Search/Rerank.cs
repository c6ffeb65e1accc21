using System.Numerics.Tensors;

namespace AlexNet.Search;

/// <summary>
/// The short list's exact ranking, from the fp32 rows (faiss's <c>IndexRefine</c>: a scan picks candidates by its
/// storage's distance, the refine step ranks them by the exact one). The distances results report are
/// <see cref="TensorPrimitives.Distance"/>, so an index equals a brute-force search with that function, bit for bit,
/// unless k rows lie within fp32 rounding of one another at the cut, or (compact storages) a true neighbour missed the
/// short list.
/// </summary>
static class Rerank
{
    /// <summary>The candidates (sorted by the scan's distance) ranked by their exact distance, nearest first.
    /// <paramref name="squaredFirst"/> (a compact storage's RerankFactor x k candidates) takes their fp32 squared
    /// distances first and keeps the best 2 x <paramref name="take"/>, as many as an fp32 scan hands over.</summary>
    public static Candidate[] Exact(Candidate[] candidates, RowBlocks<float> rows, ReadOnlySpan<float> values,
        ReadOnlySpan<float> query, int take, bool squaredFirst)
    {
        if (squaredFirst)
        {
            // Four rows at a time: the short list's rows lie anywhere in memory, so one at a time each waits for memory.
            Span<float> d = stackalloc float[4];
            var i = 0;
            for (; i + 4 <= candidates.Length; i += 4)
            {
                VectorKernels.SquaredDistances(rows.Row(candidates[i].Row), rows.Row(candidates[i + 1].Row), rows.Row(candidates[i + 2].Row),
                    rows.Row(candidates[i + 3].Row), values, d);
                for (var j = 0; j < 4; j++) candidates[i + j] = candidates[i + j] with { Distance = d[j] };
            }
            for (; i < candidates.Length; i++)
                candidates[i] = candidates[i] with { Distance = VectorKernels.SquaredDistance(rows.Row(candidates[i].Row), values) };
            Array.Sort(candidates);
            candidates = candidates[..Math.Min(candidates.Length, 2 * take)];
        }
        // The exact distance of rows just read (in cache).
        for (var i = 0; i < candidates.Length; i++)
            candidates[i] = new Candidate(TensorPrimitives.Distance(rows.Row(candidates[i].Row), query), candidates[i].Row);
        Array.Sort(candidates);
        return candidates;
    }
}
