using System.Threading.Channels;
using AlexNet.Model.Imaging;

namespace AlexNet.Training.Data;

/// <summary>One batch: CHW floats (N, 3, S, S) in pixel units and labels.</summary>
public sealed record Batch(float[] Images, long[] Labels, int Count);

/// <summary>
/// Produces training batches in a seeded order, building the next batches on worker threads while the model trains
/// on the current one (a bounded prefetch queue). The order of epoch e is a shuffle seeded by (seed, e) and the
/// augmentation of position i by (seed, e, i): a resumed run sees exactly the batches the interrupted one would have.
/// </summary>
public sealed class BatchLoader(ImageSet set, Augmenter augmenter, int batchSize, int seed, int prefetch = 3)
{
    public int BatchesPerEpoch => (set.Count + batchSize - 1) / batchSize;

    public int[] Order(int epoch)
    {
        var order = Enumerable.Range(0, set.Count).ToArray();
        new Random(Seeds.Mix(seed, epoch, 0x5eed)).Shuffle(order);
        return order;
    }

    public async IAsyncEnumerable<Batch> Epoch(int epoch, int? limitBatches = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        var order = Order(epoch);
        var batches = Math.Min(BatchesPerEpoch, limitBatches ?? int.MaxValue);
        var queue = Channel.CreateBounded<Batch>(prefetch);
        var producer = Task.Run(async () =>
        {
            try
            {
                for (var b = 0; b < batches; b++)
                    await queue.Writer.WriteAsync(Build(order, epoch, b), ct);
                queue.Writer.Complete();
            }
            catch (Exception e) { queue.Writer.Complete(e); }
        }, ct);
        await foreach (var batch in queue.Reader.ReadAllAsync(ct)) yield return batch;
        await producer;
    }

    Batch Build(int[] order, int epoch, int b)
    {
        var start = b * batchSize;
        var n = Math.Min(batchSize, order.Length - start);
        var crop = augmenter.Preprocessor.CropLength;
        var images = new float[n * crop];
        var labels = new long[n];
        Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = 2 }, i =>
        {
            var index = order[start + i];
            var rng = new Random(Seeds.Mix(seed, epoch, start + i));
            augmenter.Write(new PreparedImage(set.Rgb(index).ToArray(), set.Size), rng, images.AsSpan(i * crop, crop));
            labels[i] = set.Labels[index];
        });
        return new Batch(images, labels, n);
    }

    /// <summary>Evaluation batches: the given crops of every image, in order (no shuffling, no augmentation).</summary>
    public static IEnumerable<(float[] Images, int[] Labels, int Count)> Crops(ImageSet set, ImagePreprocessor prep,
        IReadOnlyList<CropWindow> crops, int imagesPerBatch)
    {
        var len = prep.CropLength;
        for (var start = 0; start < set.Count; start += imagesPerBatch)
        {
            var n = Math.Min(imagesPerBatch, set.Count - start);
            var images = new float[n * crops.Count * len];
            Parallel.For(0, n, i =>
            {
                var image = new PreparedImage(set.Rgb(start + i).ToArray(), set.Size);
                for (var c = 0; c < crops.Count; c++)
                    prep.WriteCrop(image, crops[c], images.AsSpan((i * crops.Count + c) * len, len));
            });
            yield return (images, set.Labels[start..(start + n)], n);
        }
    }
}
