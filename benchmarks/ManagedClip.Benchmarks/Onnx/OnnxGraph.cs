using System.Runtime.InteropServices;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// Builds an ONNX graph node by node. Values get readable names from a scope
/// (<c>blocks.3.attn/MatMul_2</c>), so a profile or an error from ONNX Runtime says where in the model it is.
/// </summary>
internal sealed class OnnxGraph
{
    private readonly List<ProtoMessage> nodes = new();
    private readonly List<ProtoMessage> initializers = new();
    private readonly List<ProtoMessage> inputs = new();
    private readonly List<ProtoMessage> outputs = new();
    private readonly HashSet<string> valueNames = new();
    private int counter;

    /// <summary>
    /// Write the blocks' Linear layers (the ones <see cref="ManagedClip.Model.ReducedPrecisionLayers"/> lists) as
    /// ONNX Runtime's dynamically quantized int8 product (<see cref="OnnxLayers.Linear(OnnxGraph, ManagedClip.IO.Formats.TensorStore, string, string, int, int, bool)"/>).
    /// </summary>
    public bool QuantizeLinears { get; init; }

    /// <summary>True once a node of ONNX Runtime's contrib domain was added (the model must import it).</summary>
    public bool UsesMicrosoftDomain { get; private set; }

    /// <summary>Prefix for the names of nodes and weights added next, e.g. <c>blocks.3.attn</c>.</summary>
    public string Scope { get; set; } = "";

    /// <summary>Declares a graph input.</summary>
    public string Input(string name, OnnxDataType type, params OnnxDim[] dims)
    {
        Claim(name);
        inputs.Add(OnnxWriter.ValueInfo(name, type, dims));
        return name;
    }

    /// <summary>Declares <paramref name="value"/> (produced with that exact name) as a graph output.</summary>
    public void Output(string value, OnnxDataType type, params OnnxDim[] dims)
    {
        if (!valueNames.Contains(value)) throw new InvalidOperationException($"Graph output '{value}' is not produced by any node.");
        outputs.Add(OnnxWriter.ValueInfo(value, type, dims));
    }

    /// <summary>
    /// A float32 weight stored as raw little-endian data, named <paramref name="name"/> exactly (checkpoint key),
    /// not scoped.
    /// </summary>
    public string Weight(string name, long[] dims, ReadOnlySpan<float> values)
    {
        long count = dims.Aggregate(1L, (a, b) => a * b);
        if (count != values.Length)
            throw new ArgumentException($"Constant '{name}': {values.Length} values do not fill shape [{string.Join(", ", dims)}].");
        var raw = new byte[checked(values.Length * sizeof(float))];
        values.CopyTo(MemoryMarshal.Cast<byte, float>(raw.AsSpan()));
        return AddInitializer(name, OnnxDataType.Float, dims, raw);
    }

    /// <summary>An int8 weight (quantized), named <paramref name="name"/> exactly, not scoped.</summary>
    public string Int8Weight(string name, long[] dims, sbyte[] values)
    {
        if (dims.Aggregate(1L, (a, b) => a * b) != values.Length)
            throw new ArgumentException($"Constant '{name}': {values.Length} values do not fill shape [{string.Join(", ", dims)}].");
        return AddInitializer(name, OnnxDataType.Int8, dims, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
    }

    /// <summary>
    /// Adds a node of ONNX Runtime's contrib domain (<see cref="OnnxWriter.MicrosoftDomain"/>) with one output; an
    /// empty input name leaves an optional input out, as ONNX spells it.
    /// </summary>
    public string MicrosoftOp(string opType, params string[] nodeInputs)
    {
        foreach (var input in nodeInputs)
            if (input.Length > 0 && !valueNames.Contains(input)) throw new InvalidOperationException($"{opType} input '{input}' is not defined yet.");
        string output = Unique(opType);
        Claim(output);
        nodes.Add(OnnxWriter.Node(opType, output, nodeInputs, [output], [], OnnxWriter.MicrosoftDomain));
        UsesMicrosoftDomain = true;
        return output;
    }

    /// <summary>A float32 scalar constant (rank 0), named within the scope (numbered).</summary>
    public string Scalar(string name, float value) =>
        AddInitializer(Unique(name), OnnxDataType.Float, [], BitConverter.GetBytes(value));

    /// <summary>An int64 constant of shape [values.Length] (a target shape, axes), named within the scope (numbered).</summary>
    public string Int64s(string name, params long[] values) =>
        AddInitializer(Unique(name), OnnxDataType.Int64, [values.Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>An int64 scalar constant (rank 0, e.g. a Gather index), named within the scope (numbered).</summary>
    public string Int64Scalar(string name, long value) =>
        AddInitializer(Unique(name), OnnxDataType.Int64, [], BitConverter.GetBytes(value));

    /// <summary>Adds a node with one output and returns the output's name.</summary>
    public string Op(string opType, params string[] nodeInputs) => Op(opType, nodeInputs, []);

    /// <summary>Adds a node with attributes and one output; <paramref name="outputName"/> fixes the output's name.</summary>
    public string Op(string opType, string[] nodeInputs, ProtoMessage[] attributes, string? outputName = null)
    {
        foreach (var input in nodeInputs)
            if (!valueNames.Contains(input)) throw new InvalidOperationException($"{opType} input '{input}' is not defined yet.");
        string nodeName = Unique(opType);
        string output = outputName ?? nodeName;
        Claim(output);
        nodes.Add(OnnxWriter.Node(opType, nodeName, nodeInputs, [output], attributes));
        return output;
    }

    /// <summary>The finished <c>GraphProto</c>.</summary>
    public ProtoMessage Build(string name) => OnnxWriter.Graph(name, nodes, initializers, inputs, outputs);

    private string AddInitializer(string name, OnnxDataType type, long[] dims, byte[] raw)
    {
        Claim(name);
        initializers.Add(OnnxWriter.Tensor(name, type, dims, raw));
        return name;
    }

    // Scoped and numbered, so the same helper can run twice in one scope: "blocks.3.attn/MatMul_17".
    private string Unique(string name) => Scope.Length == 0 ? $"{name}_{counter++}" : $"{Scope}/{name}_{counter++}";

    private void Claim(string name)
    {
        if (!valueNames.Add(name)) throw new InvalidOperationException($"ONNX value name '{name}' is used twice.");
    }
}
