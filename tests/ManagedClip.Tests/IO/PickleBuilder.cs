using System.Buffers.Binary;
using System.Text;

namespace ManagedClip.Tests.IO;

/// <summary>Writes pickle opcodes by hand, to build both torch-like and hostile data.pkl streams.</summary>
internal sealed class PickleBuilder
{
    private readonly List<byte> bytes = [];

    public PickleBuilder Op(char opcode) { bytes.Add((byte)opcode); return this; }
    public PickleBuilder Op(byte opcode) { bytes.Add(opcode); return this; }
    public PickleBuilder Raw(params byte[] raw) { bytes.AddRange(raw); return this; }
    public PickleBuilder Proto(int version = 2) => Op(0x80).Raw((byte)version);
    public PickleBuilder Mark() => Op('(');
    public PickleBuilder Tuple() => Op('t');
    public PickleBuilder EmptyTuple() => Op(')');
    public PickleBuilder EmptyDict() => Op('}');
    public PickleBuilder SetItems() => Op('u');
    public PickleBuilder Reduce() => Op('R');
    public PickleBuilder BinPersId() => Op('Q');
    public PickleBuilder False() => Op(0x89);
    public PickleBuilder Stop() => Op('.');
    public PickleBuilder Put(byte index) => Op('q').Raw(index);
    public PickleBuilder Get(byte index) => Op('h').Raw(index);

    public PickleBuilder Global(string module, string name) => Op('c').Raw(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));

    public PickleBuilder Unicode(string text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        var length = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, utf8.Length);
        return Op('X').Raw(length).Raw(utf8);
    }

    public PickleBuilder Int(long value)
    {
        if (value is >= 0 and < 256) return Op('K').Raw((byte)value);
        var raw = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(raw, value);
        return Op(0x8a).Raw(8).Raw(raw); // LONG1 with 8 bytes
    }

    public PickleBuilder IntTuple(params long[] values)
    {
        Mark();
        foreach (var v in values) Int(v);
        return Tuple();
    }

    /// <summary>The persistent id torch writes for a storage: ('storage', torch.&lt;type&gt;, key, 'cpu', numel).</summary>
    public PickleBuilder Storage(string storageType, string key, long numel) =>
        Mark().Unicode("storage").Global("torch", storageType).Unicode(key).Unicode("cpu").Int(numel).Tuple().BinPersId();

    /// <summary>_rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) — exactly torch's shape of call.</summary>
    public PickleBuilder Tensor(string storageType, string key, long numel, long offset, long[] size, long[] stride) =>
        Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Storage(storageType, key, numel).Int(offset).IntTuple(size).IntTuple(stride).False()
            .Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Tuple().Reduce();

    public byte[] ToArray() => bytes.ToArray();
}
