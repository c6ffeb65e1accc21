using System.Text.Json;
using AlexNet.Model;
using AlexNet.Model.OutOfDomain;
using Microsoft.ML.OnnxRuntime;

namespace AlexNet.Api.Inference;

/// <summary>Checks a file of ours against <see cref="OnnxContract"/>: the input and output names and shapes, and that
/// the labels in the metadata match the width of <c>probabilities</c>. Errors name the path.</summary>
public static class ContractCheck
{
    public static ModelInfo Check(InferenceSession session, string path, string fingerprint)
    {
        ModelContractException Bad(string what) => new($"{path}: {what} (see OnnxContract: input '{OnnxContract.Input}' (N, 3, S, S), " +
            $"outputs '{OnnxContract.Probabilities}' (N, classes) and '{OnnxContract.Features}' (N, D), labels in metadata '{OnnxContract.Keys.Labels}').");

        if (!session.InputMetadata.TryGetValue(OnnxContract.Input, out var input))
            throw Bad($"no input named '{OnnxContract.Input}'; it has [{string.Join(", ", session.InputMetadata.Keys)}]");
        var inDims = input.Dimensions;
        if (input.ElementType != typeof(float) || inDims.Length != 4 || inDims[1] != 3 || inDims[2] <= 0 || inDims[2] != inDims[3])
            throw Bad($"input '{OnnxContract.Input}' is {input.ElementType.Name} [{string.Join(", ", inDims)}], expected float (N, 3, S, S)");
        var width = OutputWidth(session, OnnxContract.Probabilities, Bad);
        var featureDim = OutputWidth(session, OnnxContract.Features, Bad);

        var meta = session.ModelMetadata.CustomMetadataMap;
        var labels = Json<string[]>(meta, OnnxContract.Keys.Labels, Bad) ?? throw Bad($"no '{OnnxContract.Keys.Labels}' in the metadata");
        if (labels.Length != width)
            throw Bad($"{labels.Length} labels in '{OnnxContract.Keys.Labels}' but '{OnnxContract.Probabilities}' has {width} columns");
        var synsets = Json<string[]>(meta, OnnxContract.Keys.Synsets, Bad);
        if (synsets is not null && synsets.Length != labels.Length)
            throw Bad($"{synsets.Length} synsets in '{OnnxContract.Keys.Synsets}' for {labels.Length} labels");

        var inputSize = Int(meta, OnnxContract.Keys.InputSize, Bad) ?? inDims[2];
        if (inputSize != inDims[2])
            throw Bad($"'{OnnxContract.Keys.InputSize}' says {inputSize} but the input is {inDims[2]}x{inDims[3]}");
        // The paper's 256 for 224 when the file doesn't say.
        var resizeSize = Int(meta, OnnxContract.Keys.ResizeSize, Bad) ?? (int)Math.Round(inputSize * 256.0 / 224);
        if (resizeSize < inputSize)
            throw Bad($"'{OnnxContract.Keys.ResizeSize}' ({resizeSize}) is smaller than the input size ({inputSize})");
        var provenance = Json<JsonElement?>(meta, OnnxContract.Keys.Provenance, Bad);
        meta.TryGetValue(OnnxContract.Keys.Preset, out var preset);

        var domain = Domain(session, meta, Bad);

        return new ModelInfo(path, fingerprint, preset, inputSize, resizeSize, width, featureDim, labels,
            [.. labels.Select((_, i) => synsets is null || string.IsNullOrWhiteSpace(synsets[i]) ? null : synsets[i])],
            provenance, meta.Where(kv => kv.Key != DomainStatistics.MetadataKey).ToDictionary(), DomainStats: domain);
    }

    /// <summary>The out-of-domain statistics, when the file has them: metadata and output must come together and agree
    /// on the width. A file with neither (an older export) serves without a score.</summary>
    static DomainStatistics? Domain(InferenceSession session, Dictionary<string, string> meta, Func<string, ModelContractException> bad)
    {
        if (!meta.TryGetValue(DomainStatistics.MetadataKey, out var json)) return null;
        DomainStatistics stats;
        try
        {
            stats = DomainStatistics.FromJson(json);
        }
        catch (InvalidDataException e)
        {
            throw bad($"metadata '{DomainStatistics.MetadataKey}' is unusable: {e.Message}");
        }
        var width = OutputWidth(session, DomainStatisticsGraph.Output, bad);
        if (width != stats.Dim)
            throw bad($"output '{DomainStatisticsGraph.Output}' has {width} columns but '{DomainStatistics.MetadataKey}' describes {stats.Dim}");
        return stats;
    }

    internal static int OutputWidth(InferenceSession session, string name, Func<string, ModelContractException> bad)
    {
        if (!session.OutputMetadata.TryGetValue(name, out var output))
            throw bad($"no output named '{name}'; it has [{string.Join(", ", session.OutputMetadata.Keys)}]");
        var dims = output.Dimensions;
        if (output.ElementType != typeof(float) || dims.Length != 2 || dims[1] <= 0)
            throw bad($"output '{name}' is {output.ElementType.Name} [{string.Join(", ", dims)}], expected float (N, width)");
        return dims[1];
    }

    static T? Json<T>(Dictionary<string, string> meta, string key, Func<string, ModelContractException> bad)
    {
        if (!meta.TryGetValue(key, out var json)) return default;
        try
        {
            return JsonSerializer.Deserialize<T>(json);
        }
        catch (JsonException e)
        {
            throw bad($"metadata '{key}' is not valid JSON of {typeof(T).Name}: {e.Message}");
        }
    }

    static int? Int(Dictionary<string, string> meta, string key, Func<string, ModelContractException> bad)
    {
        if (!meta.TryGetValue(key, out var text)) return null;
        return int.TryParse(text, out var value) && value > 0 ? value : throw bad($"metadata '{key}' is '{text}', expected a positive integer");
    }
}
