using System.Buffers.Binary;
using System.Text;

namespace ManagedClip.IO.Formats;

/// <summary>
/// A restricted pickle machine for the <c>data.pkl</c> of a torch zip checkpoint. It implements only the protocol-2
/// opcodes <c>torch.save</c> emits for a state dict (and for the lists and floats of a training checkpoint that wraps
/// one) and recognises only the globals a state dict needs
/// (<c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor_v2</c>, <c>torch._utils._rebuild_parameter</c>,
/// the <c>torch.*Storage</c> classes). Every other opcode or global is refused with an error naming it, before
/// anything else happens; nothing is ever imported or executed — values are inert records (<c>PickleValues.cs</c>).
/// Stack, memo, string lengths and nesting are capped so hostile input cannot exhaust memory.
/// </summary>
internal sealed class StateDictUnpickler
{
    public const int MaxStackItems = 1_000_000;
    public const int MaxMemoEntries = 1_000_000;
    public const int MaxStringBytes = 1 << 20;
    public const int MaxNesting = 64;
    private const int MaxGlobalNameBytes = 256;

    private static readonly Dictionary<string, object> AllowedGlobals = new(StringComparer.Ordinal)
    {
        ["collections.OrderedDict"] = new PickleCallable(PickleFunction.OrderedDict, "collections.OrderedDict"),
        ["torch._utils._rebuild_tensor_v2"] = new PickleCallable(PickleFunction.RebuildTensorV2, "torch._utils._rebuild_tensor_v2"),
        ["torch._utils._rebuild_parameter"] = new PickleCallable(PickleFunction.RebuildParameter, "torch._utils._rebuild_parameter"),
        ["torch.FloatStorage"] = new TorchStorageType(TensorDType.F32, "torch.FloatStorage"),
        ["torch.DoubleStorage"] = new TorchStorageType(TensorDType.F64, "torch.DoubleStorage"),
        ["torch.HalfStorage"] = new TorchStorageType(TensorDType.F16, "torch.HalfStorage"),
        ["torch.BFloat16Storage"] = new TorchStorageType(TensorDType.BF16, "torch.BFloat16Storage"),
        ["torch.LongStorage"] = new TorchStorageType(TensorDType.I64, "torch.LongStorage"),
        ["torch.IntStorage"] = new TorchStorageType(TensorDType.I32, "torch.IntStorage"),
        ["torch.ShortStorage"] = new TorchStorageType(TensorDType.I16, "torch.ShortStorage"),
        ["torch.CharStorage"] = new TorchStorageType(TensorDType.I8, "torch.CharStorage"),
        ["torch.ByteStorage"] = new TorchStorageType(TensorDType.U8, "torch.ByteStorage"),
        ["torch.BoolStorage"] = new TorchStorageType(TensorDType.Bool, "torch.BoolStorage"),
    };

    private readonly string source;
    private readonly byte[] pickle;
    private int position;
    private readonly List<object> stack = [];
    private readonly List<int> marks = [];
    private readonly Dictionary<uint, object> memo = [];

    private StateDictUnpickler(string source, byte[] pickle)
    {
        this.source = source;
        this.pickle = pickle;
    }

    /// <summary>Runs the restricted machine over <paramref name="pickle"/> and returns the single value it built.</summary>
    /// <param name="source">Names the pickle in error messages, e.g. <c>model.bin:archive/data.pkl</c>.</param>
    /// <param name="pickle">The pickle bytes (a copy, so a later remap cannot change them mid-parse).</param>
    public static object Load(string source, byte[] pickle) => new StateDictUnpickler(source, pickle).Run();

    private object Run()
    {
        while (true)
        {
            int opcodeAt = position;
            byte opcode = ReadByte();
            switch (opcode)
            {
                case 0x80: // PROTO
                    int protocol = ReadByte();
                    if (protocol > 2) throw Refuse(opcodeAt, $"pickle protocol {protocol} (torch.save writes protocol 2)");
                    break;
                case (byte)'.': // STOP
                    if (stack.Count != 1 || marks.Count != 0)
                        throw Malformed(opcodeAt, $"STOP with {stack.Count} values and {marks.Count} open marks on the stack");
                    if (position != pickle.Length)
                        throw Malformed(opcodeAt, $"{pickle.Length - position} bytes follow STOP");
                    return stack[0];

                case (byte)'(': // MARK
                    if (marks.Count >= MaxNesting) throw Malformed(opcodeAt, $"more than {MaxNesting} nested marks");
                    marks.Add(stack.Count);
                    break;
                case (byte)'N': Push(opcodeAt, PickleNone.Instance); break;
                case 0x88: Push(opcodeAt, true); break;  // NEWTRUE
                case 0x89: Push(opcodeAt, false); break; // NEWFALSE
                case (byte)'K': Push(opcodeAt, (long)ReadByte()); break; // BININT1
                case (byte)'M': Push(opcodeAt, (long)BinaryPrimitives.ReadUInt16LittleEndian(Read(2))); break; // BININT2
                case (byte)'J': Push(opcodeAt, (long)BinaryPrimitives.ReadInt32LittleEndian(Read(4))); break; // BININT
                case 0x8a: Push(opcodeAt, ReadLong1(opcodeAt)); break; // LONG1
                case (byte)'X': // BINUNICODE
                    uint length = BinaryPrimitives.ReadUInt32LittleEndian(Read(4));
                    if (length > MaxStringBytes) throw Malformed(opcodeAt, $"a {length}-byte string (limit {MaxStringBytes})");
                    Push(opcodeAt, DecodeUtf8(opcodeAt, Read((int)length)));
                    break;

                case (byte)')': Push(opcodeAt, new PickleTuple([], 1)); break; // EMPTY_TUPLE
                case 0x85: Push(opcodeAt, Tuple(opcodeAt, PopMany(opcodeAt, 1))); break; // TUPLE1
                case 0x86: Push(opcodeAt, Tuple(opcodeAt, PopMany(opcodeAt, 2))); break; // TUPLE2
                case 0x87: Push(opcodeAt, Tuple(opcodeAt, PopMany(opcodeAt, 3))); break; // TUPLE3
                case (byte)'t': Push(opcodeAt, Tuple(opcodeAt, PopToMark(opcodeAt))); break; // TUPLE
                case (byte)'}': Push(opcodeAt, new PickleDict(1)); break; // EMPTY_DICT
                case (byte)']': Push(opcodeAt, new PickleList()); break; // EMPTY_LIST (a training checkpoint's optimizer state)
                case (byte)'a': // APPEND
                    var appended = Pop(opcodeAt);
                    Append(opcodeAt, Peek(opcodeAt), [appended]);
                    break;
                case (byte)'e': // APPENDS
                    var appendedMany = PopToMark(opcodeAt);
                    Append(opcodeAt, Peek(opcodeAt), appendedMany);
                    break;
                case (byte)'G': Push(opcodeAt, BinaryPrimitives.ReadDoubleBigEndian(Read(8))); break; // BINFLOAT
                case (byte)'s': // SETITEM
                    var pair = PopMany(opcodeAt, 2);
                    SetItems(opcodeAt, Peek(opcodeAt), pair);
                    break;
                case (byte)'u': // SETITEMS
                    var items = PopToMark(opcodeAt);
                    SetItems(opcodeAt, Peek(opcodeAt), items);
                    break;

                case (byte)'q': Memoize(opcodeAt, ReadByte()); break; // BINPUT
                case (byte)'r': Memoize(opcodeAt, BinaryPrimitives.ReadUInt32LittleEndian(Read(4))); break; // LONG_BINPUT
                case (byte)'h': Push(opcodeAt, Recall(opcodeAt, ReadByte())); break; // BINGET
                case (byte)'j': Push(opcodeAt, Recall(opcodeAt, BinaryPrimitives.ReadUInt32LittleEndian(Read(4)))); break; // LONG_BINGET

                case (byte)'c': Push(opcodeAt, Global(opcodeAt)); break; // GLOBAL
                case (byte)'Q': Push(opcodeAt, PersistentStorage(opcodeAt, Pop(opcodeAt))); break; // BINPERSID
                case (byte)'R': // REDUCE
                    var arguments = Pop(opcodeAt);
                    var callable = Pop(opcodeAt);
                    Push(opcodeAt, Reduce(opcodeAt, callable, arguments));
                    break;
                case (byte)'b': // BUILD
                    var state = Pop(opcodeAt);
                    Build(opcodeAt, Peek(opcodeAt), state);
                    break;

                default:
                    throw Refuse(opcodeAt, $"opcode {PickleOpcodeNames.Describe(opcode)}");
            }
        }
    }

    private object Global(int at)
    {
        string module = ReadLine(at), name = ReadLine(at);
        var qualified = module + "." + name;
        if (AllowedGlobals.TryGetValue(qualified, out var allowed)) return allowed;
        throw new InvalidDataException(
            $"{source}: refusing global '{UserText.Quote(qualified)}' at byte {at}: a state dict only needs collections.OrderedDict, " +
            "torch._utils._rebuild_tensor_v2/_rebuild_parameter and torch.*Storage (nothing was imported or executed).");
    }

    private TorchStorageRef PersistentStorage(int at, object id)
    {
        // torch writes ('storage', storage_type, key, location, numel).
        if (id is not PickleTuple { Items: [string tag, var type, string key, string location, long count] } || tag != "storage")
            throw Malformed(at, $"persistent id {Describe(id)} is not ('storage', type, key, location, numel)");
        if (type is not TorchStorageType storageType)
            throw Malformed(at, $"persistent id for storage '{UserText.Quote(key)}' names {Describe(type)}, not a torch.*Storage class");
        if (count < 0) throw Malformed(at, $"storage '{UserText.Quote(key)}' has a negative size {count}");
        return new TorchStorageRef(storageType.DType, key, location, count);
    }

    private object Reduce(int at, object callable, object arguments)
    {
        if (callable is not PickleCallable function)
            throw Refuse(at, $"REDUCE calling {Describe(callable)}");
        if (arguments is not PickleTuple { Items: var args })
            throw Malformed(at, $"REDUCE of {function.QualifiedName} with {Describe(arguments)} instead of an argument tuple");
        switch (function.Function)
        {
            case PickleFunction.OrderedDict:
                if (args.Length != 0) throw Malformed(at, "collections.OrderedDict called with arguments");
                return new PickleDict(1);
            case PickleFunction.RebuildTensorV2:
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (args is not [TorchStorageRef storage, long offset, PickleTuple size, PickleTuple stride, bool, PickleDict hooks, ..]
                    || args.Length > 7)
                    throw Malformed(at, $"_rebuild_tensor_v2 arguments {Describe(arguments)} are not (storage, offset, size, stride, requires_grad, hooks)");
                if (hooks.Entries.Count != 0) throw Refuse(at, "a tensor with backward hooks");
                if (args.Length == 7 && args[6] is not (PickleNone or PickleDict))
                    throw Malformed(at, $"_rebuild_tensor_v2 metadata is {Describe(args[6])}");
                return new TorchTensorRef(storage, offset, Integers(at, size, "size"), Integers(at, stride, "stride"));
            case PickleFunction.RebuildParameter:
                // (data, requires_grad, backward_hooks): a Parameter is its data tensor for inference.
                if (args is not [TorchTensorRef data, bool, PickleDict parameterHooks])
                    throw Malformed(at, $"_rebuild_parameter arguments {Describe(arguments)} are not (tensor, requires_grad, hooks)");
                if (parameterHooks.Entries.Count != 0) throw Refuse(at, "a parameter with backward hooks");
                return data;
            default:
                throw Refuse(at, $"REDUCE calling {function.QualifiedName}");
        }
    }

    /// <summary>BUILD sets an object's state; the only use in a state dict is an OrderedDict's <c>_metadata</c> attribute, which inference ignores.</summary>
    private void Build(int at, object target, object state)
    {
        if (target is not PickleDict || state is not PickleDict)
            throw Refuse(at, $"BUILD of {Describe(target)} with state {Describe(state)}");
    }

    private void SetItems(int at, object target, object[] items)
    {
        if (target is not PickleDict dict) throw Malformed(at, $"SETITEM(S) on {Describe(target)}, not a dict");
        if (items.Length % 2 != 0) throw Malformed(at, "SETITEMS with an odd number of values");
        for (int i = 0; i < items.Length; i += 2)
        {
            if (items[i] is not (string or long)) throw Refuse(at, $"a dict key of type {Describe(items[i])}");
            if (Depth(items[i + 1]) + 1 > MaxNesting) throw Malformed(at, $"values nested deeper than {MaxNesting}");
            dict.Entries.Add(new(items[i], items[i + 1]));
        }
    }

    private void Append(int at, object target, object[] items)
    {
        if (target is not PickleList list) throw Malformed(at, $"APPEND(S) on {Describe(target)}, not a list");
        foreach (var item in items)
        {
            if (Depth(item) + 1 > MaxNesting) throw Malformed(at, $"values nested deeper than {MaxNesting}");
            list.Items.Add(item);
        }
    }

    private PickleTuple Tuple(int at, object[] items)
    {
        int depth = 1 + items.Select(Depth).DefaultIfEmpty(0).Max();
        if (depth > MaxNesting) throw Malformed(at, $"tuples nested deeper than {MaxNesting}");
        return new PickleTuple(items, depth);
    }

    private static int Depth(object value) => value switch
    {
        PickleTuple tuple => tuple.Depth,
        PickleDict dict => dict.Depth,
        PickleList => 1,
        _ => 0,
    };

    private long[] Integers(int at, PickleTuple tuple, string what)
    {
        var values = new long[tuple.Items.Length];
        for (int i = 0; i < values.Length; i++)
            values[i] = tuple.Items[i] as long? ?? throw Malformed(at, $"tensor {what} holds {Describe(tuple.Items[i])}, not an integer");
        return values;
    }

    private void Memoize(int at, uint index)
    {
        if (memo.Count >= MaxMemoEntries && !memo.ContainsKey(index)) throw Malformed(at, $"more than {MaxMemoEntries} memo entries");
        memo[index] = Peek(at);
    }

    private object Recall(int at, uint index) =>
        memo.TryGetValue(index, out var value) ? value : throw Malformed(at, $"memo entry {index} is read before it is written");

    private void Push(int at, object value)
    {
        if (stack.Count >= MaxStackItems) throw Malformed(at, $"more than {MaxStackItems} values on the stack");
        stack.Add(value);
    }

    private object Peek(int at)
    {
        int floor = marks.Count > 0 ? marks[^1] : 0;
        if (stack.Count <= floor) throw Malformed(at, "stack underflow");
        return stack[^1];
    }

    private object Pop(int at)
    {
        var value = Peek(at);
        stack.RemoveAt(stack.Count - 1);
        return value;
    }

    private object[] PopMany(int at, int count)
    {
        int floor = marks.Count > 0 ? marks[^1] : 0;
        if (stack.Count - count < floor) throw Malformed(at, "stack underflow");
        var items = stack.GetRange(stack.Count - count, count).ToArray();
        stack.RemoveRange(stack.Count - count, count);
        return items;
    }

    private object[] PopToMark(int at)
    {
        if (marks.Count == 0) throw Malformed(at, "no MARK to collect values up to");
        int mark = marks[^1];
        marks.RemoveAt(marks.Count - 1);
        var items = stack.GetRange(mark, stack.Count - mark).ToArray();
        stack.RemoveRange(mark, stack.Count - mark);
        return items;
    }

    private long ReadLong1(int at)
    {
        int length = ReadByte();
        if (length > 8) throw Refuse(at, $"an integer of {length} bytes (more than 64 bits)");
        var bytes = Read(length);
        long value = 0;
        for (int i = length - 1; i >= 0; i--) value = (value << 8) | bytes[i];
        // Two's complement: sign-extend from the top byte.
        if (length is > 0 and < 8 && (bytes[length - 1] & 0x80) != 0) value -= 1L << (8 * length);
        return value;
    }

    private string ReadLine(int at)
    {
        int end = Array.IndexOf(pickle, (byte)'\n', position, Math.Min(MaxGlobalNameBytes, pickle.Length - position));
        if (end < 0) throw Malformed(at, "GLOBAL name is unterminated or longer than 256 bytes");
        var text = DecodeUtf8(at, pickle.AsSpan(position, end - position));
        position = end + 1;
        return text;
    }

    private string DecodeUtf8(int at, ReadOnlySpan<byte> bytes)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw Malformed(at, "a string that is not valid UTF-8");
        }
    }

    private byte ReadByte() => Read(1)[0];

    private ReadOnlySpan<byte> Read(int count)
    {
        if (count > pickle.Length - position)
            throw new InvalidDataException($"{source}: the pickle is truncated at byte {position} (needs {count} more bytes).");
        var span = pickle.AsSpan(position, count);
        position += count;
        return span;
    }

    private static string Describe(object value) => value switch
    {
        string s => $"the string '{UserText.Quote(s, 60)}'",
        long n => $"the integer {n}",
        bool b => b ? "True" : "False",
        PickleNone => "None",
        PickleTuple t => $"a {t.Items.Length}-tuple",
        PickleDict => "a dict",
        PickleList => "a list",
        double d => $"the number {d}",
        PickleCallable c => c.QualifiedName,
        TorchStorageType s => s.QualifiedName,
        TorchStorageRef s => $"storage '{UserText.Quote(s.Key)}'",
        TorchTensorRef => "a tensor",
        _ => value.GetType().Name,
    };

    private InvalidDataException Refuse(int at, string what) =>
        new($"{source}: refusing {what} at byte {at}: not part of a plain state dict (nothing was executed).");

    private InvalidDataException Malformed(int at, string what) =>
        new($"{source}: malformed pickle at byte {at}: {what}.");
}
