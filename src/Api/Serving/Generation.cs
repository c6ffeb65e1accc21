using AlexNet.Api.Gallery;
using AlexNet.Api.Inference;

namespace AlexNet.Api.Serving;

/// <summary>
/// One model in service together with the gallery index that holds its vectors: a search's query vector and the
/// vectors it is compared with always come from the same model, because a request leases both at once
/// (<see cref="ServingHost.Acquire"/>). A reload builds the next generation and swaps once. The index is changed in
/// place by gallery adds and deletes while the generation serves; the classifier's session is disposed when the
/// generation has been replaced and its last lease ends.
/// </summary>
public sealed class Generation : IDisposable
{
    int _references = 1;   // the holder's (ServingHost)
    int _disposed;

    /// <param name="index">Null for a model without features (a profiled third-party classifier): no gallery search.</param>
    public Generation(OnnxClassifier classifier, IVectorIndex? index)
    {
        Classifier = classifier;
        Index = index;
    }

    public OnnxClassifier Classifier { get; }
    public ModelInfo Model => Classifier.Model;
    /// <summary>The model's fingerprint: the identity of the vectors in <see cref="Index"/>.</summary>
    public string Fingerprint => Classifier.Model.Fingerprint;
    public IVectorIndex? Index { get; }

    /// <summary>The index, or a refusal when this model gives no features.</summary>
    public IVectorIndex Searchable => Index ?? throw RefusedException.NoFeatures(Model.FileName);

    /// <summary>Takes a reference for one in-flight use; false once the generation is gone (read the holder again).</summary>
    public bool TryAddRef()
    {
        var n = Volatile.Read(ref _references);
        while (n > 0)
        {
            var seen = Interlocked.CompareExchange(ref _references, n + 1, n);
            if (seen == n) return true;
            n = seen;
        }
        return false;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0) Classifier.Dispose();
    }

    /// <summary>Drops the holder's reference (once); the session goes when in-flight uses end.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) Release();
    }
}

/// <summary>One request's hold on a generation (see <see cref="ServingHost.Acquire"/>).</summary>
public sealed class GenerationLease(Generation generation) : IDisposable
{
    int _released;

    public Generation Generation { get; } = generation;
    public OnnxClassifier Classifier => Generation.Classifier;
    public ModelInfo Model => Generation.Model;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) Generation.Release();
    }
}
