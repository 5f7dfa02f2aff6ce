namespace ManagedClip.Benchmarks.Onnx;

/// <summary>ONNX <c>TensorProto.DataType</c> values used here.</summary>
internal enum OnnxDataType
{
    Float = 1,
    Int8 = 3,
    Int64 = 7,
}

/// <summary>One dimension of a graph input/output: a fixed size or a symbolic name such as <c>"batch"</c>.</summary>
internal readonly record struct OnnxDim(long Value, string? Name)
{
    public static implicit operator OnnxDim(long value) => new(value, null);
    public static implicit operator OnnxDim(string name) => new(0, name);
}

/// <summary>
/// Encodes the few ONNX messages a plain inference graph needs (onnx/onnx.proto, proto2 syntax).
/// Field numbers are written as named constants beside each message so they can be checked against onnx.proto.
/// Repeated scalars are written unpacked, the proto2 default; parsers accept either form.
/// </summary>
internal static class OnnxWriter
{
    /// <summary>IR version 8 (ONNX 1.10+); every ONNX Runtime since 1.10 reads it.</summary>
    public const long IrVersion = 8;

    /// <summary>Opset 17: the first with <c>LayerNormalization</c>.</summary>
    public const long OpsetVersion = 17;

    // protobuf refuses messages of 2 GiB and more; ONNX files larger than that need external data.
    private const long MaxModelBytes = int.MaxValue;

    private static class ModelField { public const int IrVersion = 1, ProducerName = 2, Graph = 7, OpsetImport = 8; }
    private static class OpsetField { public const int Domain = 1, Version = 2; }
    private static class GraphField { public const int Node = 1, Name = 2, Initializer = 5, Input = 11, Output = 12; }
    private static class NodeField { public const int Input = 1, Output = 2, Name = 3, OpType = 4, Attribute = 5, Domain = 7; }
    private static class AttributeField { public const int Name = 1, F = 2, I = 3, Ints = 8, Type = 20; }
    private static class AttributeType { public const int Float = 1, Int = 2, Ints = 7; }
    private static class TensorField { public const int Dims = 1, DataType = 2, Name = 8, RawData = 9; }
    private static class ValueInfoField { public const int Name = 1, Type = 2; }
    private static class TypeField { public const int TensorType = 1; }
    private static class TensorTypeField { public const int ElemType = 1, Shape = 2; }
    private static class ShapeField { public const int Dim = 1; }
    private static class DimensionField { public const int DimValue = 1, DimParam = 2; }

    /// <summary>A <c>TensorProto</c> holding <paramref name="rawData"/> (little-endian elements, row-major).</summary>
    public static ProtoMessage Tensor(string name, OnnxDataType type, IReadOnlyList<long> dims, byte[] rawData)
    {
        var tensor = new ProtoMessage();
        foreach (var dim in dims) tensor.Varint(TensorField.Dims, dim);
        return tensor.Varint(TensorField.DataType, (int)type)
            .String(TensorField.Name, name)
            .Bytes(TensorField.RawData, rawData);
    }

    /// <summary>ONNX Runtime's contrib-op domain (<c>DynamicQuantizeMatMul</c> and friends), version 1.</summary>
    public const string MicrosoftDomain = "com.microsoft";

    /// <summary>A <c>NodeProto</c> of the default (ai.onnx) domain, or of <paramref name="domain"/>.</summary>
    public static ProtoMessage Node(string opType, string name, IEnumerable<string> inputs, IEnumerable<string> outputs,
        IEnumerable<ProtoMessage> attributes, string domain = "")
    {
        var node = new ProtoMessage();
        foreach (var input in inputs) node.String(NodeField.Input, input);
        foreach (var output in outputs) node.String(NodeField.Output, output);
        node.String(NodeField.Name, name).String(NodeField.OpType, opType);
        foreach (var attribute in attributes) node.Message(NodeField.Attribute, attribute);
        if (domain.Length > 0) node.String(NodeField.Domain, domain);
        return node;
    }

    /// <summary>An integer attribute, e.g. <c>axis</c>.</summary>
    public static ProtoMessage IntAttribute(string name, long value) =>
        new ProtoMessage().String(AttributeField.Name, name).Varint(AttributeField.Type, AttributeType.Int)
            .Varint(AttributeField.I, value);

    /// <summary>A float attribute, e.g. <c>epsilon</c>.</summary>
    public static ProtoMessage FloatAttribute(string name, float value) =>
        new ProtoMessage().String(AttributeField.Name, name).Varint(AttributeField.Type, AttributeType.Float)
            .Float(AttributeField.F, value);

    /// <summary>An integer-list attribute, e.g. <c>perm</c> or <c>kernel_shape</c>.</summary>
    public static ProtoMessage IntsAttribute(string name, params long[] values)
    {
        var attribute = new ProtoMessage().String(AttributeField.Name, name).Varint(AttributeField.Type, AttributeType.Ints);
        foreach (var value in values) attribute.Varint(AttributeField.Ints, value);
        return attribute;
    }

    /// <summary>A <c>ValueInfoProto</c> describing a graph input or output tensor.</summary>
    public static ProtoMessage ValueInfo(string name, OnnxDataType type, IReadOnlyList<OnnxDim> dims)
    {
        var shape = new ProtoMessage();
        foreach (var dim in dims)
        {
            var dimension = new ProtoMessage();
            if (dim.Name is null) dimension.Varint(DimensionField.DimValue, dim.Value);
            else dimension.String(DimensionField.DimParam, dim.Name);
            shape.Message(ShapeField.Dim, dimension);
        }
        var tensorType = new ProtoMessage().Varint(TensorTypeField.ElemType, (int)type).Message(TensorTypeField.Shape, shape);
        var typeProto = new ProtoMessage().Message(TypeField.TensorType, tensorType);
        return new ProtoMessage().String(ValueInfoField.Name, name).Message(ValueInfoField.Type, typeProto);
    }

    /// <summary>A <c>GraphProto</c>; nodes must be in topological order.</summary>
    public static ProtoMessage Graph(string name, IEnumerable<ProtoMessage> nodes, IEnumerable<ProtoMessage> initializers,
        IEnumerable<ProtoMessage> inputs, IEnumerable<ProtoMessage> outputs)
    {
        var graph = new ProtoMessage();
        foreach (var node in nodes) graph.Message(GraphField.Node, node);
        graph.String(GraphField.Name, name);
        foreach (var initializer in initializers) graph.Message(GraphField.Initializer, initializer);
        foreach (var input in inputs) graph.Message(GraphField.Input, input);
        foreach (var output in outputs) graph.Message(GraphField.Output, output);
        return graph;
    }

    /// <summary>
    /// A <c>ModelProto</c> around <paramref name="graph"/>: opset 17 of the default domain, and version 1 of ONNX
    /// Runtime's contrib domain when the graph uses it.
    /// </summary>
    public static ProtoMessage Model(ProtoMessage graph, bool usesMicrosoftDomain = false)
    {
        var model = new ProtoMessage()
            .Varint(ModelField.IrVersion, IrVersion)
            .String(ModelField.ProducerName, "ManagedClip.Benchmarks")
            .Message(ModelField.Graph, graph)
            .Message(ModelField.OpsetImport, new ProtoMessage().String(OpsetField.Domain, "").Varint(OpsetField.Version, OpsetVersion));
        if (usesMicrosoftDomain)
            model.Message(ModelField.OpsetImport, new ProtoMessage().String(OpsetField.Domain, MicrosoftDomain).Varint(OpsetField.Version, 1));
        return model;
    }

    /// <summary>Writes a <c>ModelProto</c> around <paramref name="graph"/> to <paramref name="path"/>.</summary>
    public static void WriteModel(string path, ProtoMessage graph, bool usesMicrosoftDomain = false)
    {
        var model = Model(graph, usesMicrosoftDomain);
        if (model.Size > MaxModelBytes)
            throw new InvalidOperationException(
                $"{path}: the model would be {model.Size:N0} bytes; a single protobuf file must stay below 2 GiB.");
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        model.WriteTo(file);
    }
}
