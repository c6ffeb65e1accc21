using AlexNet.Model;
using Microsoft.ML.OnnxRuntime;

namespace AlexNet.Api.Inference;

/// <summary>
/// Checks a third-party ONNX file against its <see cref="ModelProfile"/> when it is loaded, so that a wrong profile
/// stops the start (or the reload) with a message naming both files, instead of serving wrong answers. Statically:
/// the named input and outputs exist, are float and have the declared shapes, and the scores' width equals the
/// label count. Then one probe image runs through the declared preprocessing: the outputs must be finite, widths
/// must match, and the declared score kind must fit (softmaxed rows sum to 1; logits do not).
/// </summary>
static class ProfileCheck
{
    /// <summary>Returns what the file and profile describe, and whether the input's batch dimension is fixed at 1.</summary>
    public static (ModelInfo Model, bool OneRowAtATime) Check(InferenceSession session, RunOptions runOptions, string path,
        string fingerprint, ModelProfile profile, string profilePath)
    {
        ModelContractException Bad(string what) => new($"{path} does not match its profile {profilePath}: {what}.");

        if (!session.InputMetadata.TryGetValue(profile.Input, out var input))
            throw Bad($"the profile's input '{profile.Input}' is not in the file, whose inputs are [{string.Join(", ", session.InputMetadata.Keys)}]");
        if (session.InputMetadata.Count != 1)
            throw Bad($"the file has {session.InputMetadata.Count} inputs [{string.Join(", ", session.InputMetadata.Keys)}]; only one-input classifiers are served");
        var dims = input.Dimensions;
        if (input.ElementType != typeof(float) || dims.Length != 4 || dims[1] != 3)
            throw Bad($"input '{profile.Input}' is {input.ElementType.Name} [{string.Join(", ", dims)}]; expected float (N, 3, S, S)");
        if (dims[2] > 0 && dims[2] != profile.InputSize || dims[3] > 0 && dims[3] != profile.InputSize)
            throw Bad($"input '{profile.Input}' is {dims[2]}x{dims[3]} but the profile's inputSize is {profile.InputSize}");
        if (dims[0] > 1)
            throw Bad($"input '{profile.Input}' has a fixed batch of {dims[0]}; only a dynamic batch or a batch of 1 is served");
        var oneRow = dims[0] == 1;

        var labelsPath = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(profilePath))!, profile.Labels));
        LabelSet labels;
        try
        {
            labels = LabelSet.Load(labelsPath);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            throw Bad($"its labels file {labelsPath} cannot be read: {e.Message}");
        }

        var names = new List<string> { profile.Scores };
        if (profile.Features is { } featureName) names.Add(featureName);
        foreach (var name in names)
        {
            if (!session.OutputMetadata.TryGetValue(name, out var output))
                throw Bad($"the profile's output '{name}' is not in the file, whose outputs are [{string.Join(", ", session.OutputMetadata.Keys)}]");
            if (output.ElementType != typeof(float) || output.Dimensions.Length != 2)
                throw Bad($"output '{name}' is {output.ElementType.Name} [{string.Join(", ", output.Dimensions)}]; expected float (N, width)");
        }
        var scoreWidth = session.OutputMetadata[profile.Scores].Dimensions[1];
        if (scoreWidth > 0 && scoreWidth != labels.Count)
            throw Bad($"output '{profile.Scores}' has {scoreWidth} columns but {labelsPath} has {labels.Count} labels");

        var (scoresSeen, featureDim) = Probe(session, runOptions, profile, names, Bad);
        if (scoresSeen != labels.Count)
            throw Bad($"output '{profile.Scores}' gave {scoresSeen} columns for a probe image but {labelsPath} has {labels.Count} labels");

        var model = new ModelInfo(path, fingerprint, Preset: null, profile.InputSize, profile.EffectiveResizeSize, labels.Count, featureDim,
            labels.Names, [.. labels.Names.Select((_, i) => labels.Synsets is { } s && !string.IsNullOrWhiteSpace(s[i]) ? s[i] : null)],
            Provenance: null, new Dictionary<string, string>(session.ModelMetadata.CustomMetadataMap), profile);
        return (model, oneRow);
    }

    /// <summary>Runs one gradient picture through the profile's preprocessing; returns the widths seen.</summary>
    static (int Scores, int Features) Probe(InferenceSession session, RunOptions runOptions, ModelProfile profile,
        List<string> outputs, Func<string, ModelContractException> bad)
    {
        var s = profile.InputSize;
        var pixels = new float[3 * s * s];
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < s; y++)
                for (var x = 0; x < s; x++)
                    pixels[(c * s + y) * s + x] = (x * 255 / s + y * 128 / s + 85 * c) % 256;
        profile.Transform().Apply(pixels, 1);
        using var value = OrtValue.CreateTensorValueFromMemory(pixels, [1, 3, s, s]);
        IDisposableReadOnlyCollection<OrtValue> results;
        try
        {
            results = session.Run(runOptions, [profile.Input], [value], outputs);
        }
        catch (OnnxRuntimeException e)
        {
            throw bad($"a probe image of 1x3x{s}x{s} does not run: {e.Message}");
        }
        using (results)
        {
            var widths = new int[outputs.Count];
            for (var i = 0; i < outputs.Count; i++)
            {
                var shape = results[i].GetTensorTypeAndShape().Shape;
                var row = results[i].GetTensorDataAsSpan<float>();
                if (shape.Length != 2 || shape[0] != 1)
                    throw bad($"output '{outputs[i]}' came back [{string.Join(", ", shape)}] for one image; expected (1, width)");
                foreach (var v in row)
                    if (!float.IsFinite(v)) throw bad($"output '{outputs[i]}' holds {v} for a probe image");
                widths[i] = (int)shape[1];
            }
            var scores = results[0].GetTensorDataAsSpan<float>();
            var (sum, min) = (0.0, double.MaxValue);
            foreach (var v in scores) (sum, min) = (sum + v, Math.Min(min, v));
            var softmaxed = min >= -1e-6 && Math.Abs(sum - 1) <= 1e-3;
            if (profile.ScoresAre == ScoreKind.Probabilities && !softmaxed)
                throw bad($"'scoresAre' is probabilities but output '{profile.Scores}' sums to {sum:G6} (smallest {min:G6}) for a probe " +
                    "image; set 'scoresAre' to logits so the service applies softmax");
            if (profile.ScoresAre == ScoreKind.Logits && softmaxed && scores.Length > 2)
                throw bad($"'scoresAre' is logits but output '{profile.Scores}' is non-negative and sums to 1 for a probe image, so it is " +
                    "already softmaxed; set 'scoresAre' to probabilities");
            return (widths[0], outputs.Count > 1 ? widths[1] : 0);
        }
    }
}
