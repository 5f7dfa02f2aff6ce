using System.Buffers.Binary;
using System.Text;

namespace ManagedClip.Benchmarks.RealWeights;

/// <summary>One weight of an ONNX graph: name, shape and float32 values (row-major).</summary>
internal sealed record OnnxInitializer(string Name, long[] Dims, float[] Values);

/// <summary>One node of an ONNX graph: its op and the names of the values it reads and writes.</summary>
internal sealed record OnnxNode(string OpType, string Name, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs);

/// <summary>
/// Reads what a weight import needs from an ONNX model (onnx/onnx.proto, proto2 wire format): the graph's float32
/// initializers and its nodes. Everything else (attributes, value infos, metadata) is skipped by wire type.
/// </summary>
/// <remarks>
/// A protobuf message is a sequence of (key, value): key = field number · 8 + wire type; wire type 0 is a varint,
/// 1 a fixed 64-bit, 2 a length-delimited run of bytes (a sub-message, string, bytes or packed repeated scalars), 5 a
/// fixed 32-bit. Field numbers below are the ones in onnx.proto.
/// </remarks>
internal sealed class OnnxModelReader
{
    private static class ModelField { public const int Graph = 7; }
    private static class GraphField { public const int Node = 1, Initializer = 5; }
    private static class NodeField { public const int Input = 1, Output = 2, Name = 3, OpType = 4; }
    private static class TensorField { public const int Dims = 1, DataType = 2, FloatData = 4, Name = 8, RawData = 9, DataLocation = 14; }
    private const int FloatType = 1, ExternalLocation = 1;
    private const int WireVarint = 0, WireFixed64 = 1, WireLengthDelimited = 2, WireFixed32 = 5;

    private readonly string source;

    private OnnxModelReader(string source) => this.source = source;

    /// <summary>The float32 initializers by name.</summary>
    public Dictionary<string, OnnxInitializer> Initializers { get; } = new(StringComparer.Ordinal);

    /// <summary>The nodes, in the file's (topological) order.</summary>
    public List<OnnxNode> Nodes { get; } = new();

    /// <summary>Parses a whole ONNX model held in memory; <paramref name="source"/> names it in errors.</summary>
    public static OnnxModelReader Parse(ReadOnlyMemory<byte> model, string source)
    {
        var reader = new OnnxModelReader(source);
        var fields = new Fields(model, reader);
        while (fields.Next(out int field, out int wire))
        {
            if (field == ModelField.Graph && wire == WireLengthDelimited) reader.ReadGraph(fields.Bytes());
            else fields.Skip(wire);
        }
        if (reader.Nodes.Count == 0) throw new InvalidDataException($"{source}: no graph nodes: not an ONNX model");
        return reader;
    }

    private void ReadGraph(ReadOnlyMemory<byte> graph)
    {
        var fields = new Fields(graph, this);
        while (fields.Next(out int field, out int wire))
        {
            if (field == GraphField.Node && wire == WireLengthDelimited) Nodes.Add(ReadNode(fields.Bytes()));
            else if (field == GraphField.Initializer && wire == WireLengthDelimited)
            {
                if (ReadTensor(fields.Bytes()) is { } tensor) Initializers[tensor.Name] = tensor;
            }
            else fields.Skip(wire);
        }
    }

    private OnnxNode ReadNode(ReadOnlyMemory<byte> node)
    {
        var fields = new Fields(node, this);
        List<string> inputs = new(), outputs = new();
        string opType = "", name = "";
        while (fields.Next(out int field, out int wire))
        {
            if (wire != WireLengthDelimited) { fields.Skip(wire); continue; }
            switch (field)
            {
                case NodeField.Input: inputs.Add(fields.String()); break;
                case NodeField.Output: outputs.Add(fields.String()); break;
                case NodeField.Name: name = fields.String(); break;
                case NodeField.OpType: opType = fields.String(); break;
                default: fields.Skip(wire); break;
            }
        }
        return new OnnxNode(opType, name, inputs, outputs);
    }

    /// <summary>A float32 tensor, or null for any other element type (int64 shapes, indices).</summary>
    private OnnxInitializer? ReadTensor(ReadOnlyMemory<byte> tensor)
    {
        var fields = new Fields(tensor, this);
        var dims = new List<long>();
        var floats = new List<float>();
        ReadOnlyMemory<byte> raw = default;
        int dataType = 0;
        string name = "";
        bool external = false;
        while (fields.Next(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (TensorField.Dims, WireVarint): dims.Add((long)fields.Varint()); break;
                case (TensorField.Dims, WireLengthDelimited): // packed
                    var packed = new Fields(fields.Bytes(), this);
                    while (packed.HasMore) dims.Add((long)packed.Varint());
                    break;
                case (TensorField.DataType, WireVarint): dataType = (int)fields.Varint(); break;
                case (TensorField.FloatData, WireFixed32): floats.Add(BitConverter.Int32BitsToSingle((int)fields.Fixed32())); break;
                case (TensorField.FloatData, WireLengthDelimited):
                    var span = fields.Bytes().Span;
                    for (int i = 0; i + 4 <= span.Length; i += 4) floats.Add(BinaryPrimitives.ReadSingleLittleEndian(span[i..]));
                    break;
                case (TensorField.Name, WireLengthDelimited): name = fields.String(); break;
                case (TensorField.RawData, WireLengthDelimited): raw = fields.Bytes(); break;
                case (TensorField.DataLocation, WireVarint): external = fields.Varint() == ExternalLocation; break;
                default: fields.Skip(wire); break;
            }
        }
        if (dataType != FloatType) return null;
        if (external) throw new InvalidDataException($"{source}: tensor '{name}' keeps its data in an external file, which this reader does not follow");
        long count = dims.Aggregate(1L, (a, b) => a * b);
        float[] values;
        if (!raw.IsEmpty)
        {
            if (raw.Length != count * 4)
                throw new InvalidDataException($"{source}: tensor '{name}' has {raw.Length} bytes of data for shape [{string.Join(", ", dims)}]");
            values = new float[count];
            var bytes = raw.Span;
            for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 * i)..]);
        }
        else
        {
            if (floats.Count != count)
                throw new InvalidDataException($"{source}: tensor '{name}' has {floats.Count} values for shape [{string.Join(", ", dims)}]");
            values = floats.ToArray();
        }
        return new OnnxInitializer(name, dims.ToArray(), values);
    }

    /// <summary>A cursor over one message's (key, value) pairs; every read is bounds-checked.</summary>
    private struct Fields(ReadOnlyMemory<byte> message, OnnxModelReader owner)
    {
        private int position;

        public readonly bool HasMore => position < message.Length;

        public bool Next(out int field, out int wire)
        {
            field = wire = 0;
            if (!HasMore) return false;
            ulong key = Varint();
            (field, wire) = ((int)(key >> 3), (int)(key & 7));
            if (field == 0) throw owner.Corrupt("field number 0");
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (position >= message.Length) throw owner.Corrupt("a varint runs past its message");
                byte b = message.Span[position++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw owner.Corrupt("a varint longer than 10 bytes");
        }

        public uint Fixed32()
        {
            if (message.Length - position < 4) throw owner.Corrupt("a fixed32 runs past its message");
            uint value = BinaryPrimitives.ReadUInt32LittleEndian(message.Span[position..]);
            position += 4;
            return value;
        }

        public ReadOnlyMemory<byte> Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(message.Length - position)) throw owner.Corrupt($"a field of {length} bytes runs past its message");
            var bytes = message.Slice(position, (int)length);
            position += (int)length;
            return bytes;
        }

        public string String() => Encoding.UTF8.GetString(Bytes().Span);

        public void Skip(int wire)
        {
            switch (wire)
            {
                case WireVarint: Varint(); break;
                case WireFixed64: Advance(8); break;
                case WireLengthDelimited: Bytes(); break;
                case WireFixed32: Advance(4); break;
                default: throw owner.Corrupt($"wire type {wire}");
            }
        }

        private void Advance(int count)
        {
            if (message.Length - position < count) throw owner.Corrupt("a fixed-size field runs past its message");
            position += count;
        }
    }

    private InvalidDataException Corrupt(string what) => new($"{source}: not a readable ONNX model ({what})");
}
