namespace AlexNet.Model.Onnx;

/// <summary>
/// Adds nodes, outputs and metadata to an existing ONNX file without touching anything else: every field of the
/// ModelProto and of its GraphProto that the edit does not own is copied byte for byte, so the weights and the
/// nodes that compute <c>probabilities</c> and <c>features</c> stay exactly as they were. Editing again replaces
/// what the last edit added (its tensors are recognised by <c>owned</c>, its metadata by key) rather than adding
/// twice. Field numbers from onnx/onnx.proto: ModelProto.graph 7, metadata_props 14; GraphProto.node 1,
/// initializer 5, output 12, value_info 13; NodeProto.output 2; TensorProto.name 8; ValueInfoProto.name 1;
/// StringStringEntryProto.key 1.
/// </summary>
public static class OnnxFileEditor
{
    const int ModelGraph = 7, ModelMetadata = 14;
    const int GraphNode = 1, GraphInitializer = 5, GraphOutput = 12, GraphValueInfo = 13;

    /// <param name="model">The ONNX file's bytes.</param>
    /// <param name="fragment">Nodes, outputs, initialisers and metadata to add (its inputs are ignored: a fragment reads
    /// tensors the graph already has).</param>
    /// <param name="owned">Whether a tensor name belongs to the edit: such nodes, initialisers and outputs already in the
    /// file are removed first.</param>
    /// <param name="removeKeys">Metadata keys to remove besides those the fragment sets.</param>
    public static byte[] Merge(ReadOnlyMemory<byte> model, OnnxModelBuilder? fragment, Func<string, bool> owned,
        IEnumerable<string>? removeKeys = null)
    {
        var newMetadata = fragment?.MetadataEntries ?? [];
        var replacedKeys = new HashSet<string>(newMetadata.Select(m => m.Key).Concat(removeKeys ?? []), StringComparer.Ordinal);
        using var output = new MemoryStream(model.Length + 4096);
        var sawGraph = false;
        foreach (var field in ProtoReader.Fields(model))
        {
            if (field.Number == ModelGraph && field.WireType == 2)
            {
                if (sawGraph) throw new InvalidDataException("The file has more than one graph field.");
                sawGraph = true;
                var graph = EditGraph(field.Body, fragment, owned);
                ProtoWriter.WriteHeader(output, ModelGraph, graph.Length);
                output.Write(graph);
            }
            else if (field.Number == ModelMetadata && field.WireType == 2
                     && ProtoReader.Strings(field.Body, 1).FirstOrDefault() is { } key && replacedKeys.Contains(key))
                continue;
            else output.Write(field.Raw.Span);
        }
        if (!sawGraph) throw new InvalidDataException("Not an ONNX model: no graph field.");
        foreach (var (key, value) in newMetadata) output.Write(OnnxModelBuilder.MetadataField(key, value));
        return output.ToArray();
    }

    /// <summary>The tensor names a graph's node writes, its initialisers and its outputs: what the edit may build on.</summary>
    public static HashSet<string> TensorNames(ReadOnlyMemory<byte> model)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var graph in ProtoReader.Fields(model).Where(f => f.Number == ModelGraph && f.WireType == 2))
            foreach (var f in ProtoReader.Fields(graph.Body))
                names.UnionWith(f.Number switch
                {
                    GraphNode => ProtoReader.Strings(f.Body, 2),
                    GraphInitializer => ProtoReader.Strings(f.Body, 8),
                    11 => ProtoReader.Strings(f.Body, 1),
                    _ => [],
                });
        return names;
    }

    /// <summary>The file's metadata_props (the last value wins where a key repeats).</summary>
    public static Dictionary<string, string> Metadata(ReadOnlyMemory<byte> model)
    {
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in ProtoReader.Fields(model).Where(f => f.Number == ModelMetadata && f.WireType == 2))
        {
            var key = ProtoReader.Strings(f.Body, 1).FirstOrDefault();
            if (key is not null) meta[key] = ProtoReader.Strings(f.Body, 2).FirstOrDefault() ?? "";
        }
        return meta;
    }

    static byte[] EditGraph(ReadOnlyMemory<byte> graph, OnnxModelBuilder? fragment, Func<string, bool> owned)
    {
        using var output = new MemoryStream(graph.Length + 4096);
        foreach (var f in ProtoReader.Fields(graph))
        {
            var drop = f.WireType == 2 && f.Number switch
            {
                GraphNode => ProtoReader.Strings(f.Body, 2).Any(owned),
                GraphInitializer => ProtoReader.Strings(f.Body, 8).Any(owned),
                GraphOutput or GraphValueInfo => ProtoReader.Strings(f.Body, 1).Any(owned),
                _ => false,
            };
            if (!drop) output.Write(f.Raw.Span);
        }
        if (fragment is not null)
            foreach (var f in ProtoReader.Fields(fragment.GraphFields()).Where(f => f.Number != 11))   // the fragment's inputs are the graph's
                output.Write(f.Raw.Span);
        return output.ToArray();
    }
}
