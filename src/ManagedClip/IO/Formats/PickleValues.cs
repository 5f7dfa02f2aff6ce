namespace ManagedClip.IO.Formats;

// The only values the restricted unpickler (StateDictUnpickler) can build. Python objects become these inert
// records; nothing here can run code.

/// <summary>Python <c>None</c>.</summary>
internal sealed class PickleNone
{
    public static readonly PickleNone Instance = new();
    public override string ToString() => "None";
}

/// <summary>A Python tuple.</summary>
internal sealed record PickleTuple(object[] Items, int Depth);

/// <summary>A Python dict or <c>collections.OrderedDict</c>, entries in insertion order.</summary>
internal sealed class PickleDict(int depth)
{
    public List<KeyValuePair<object, object>> Entries { get; } = [];
    public int Depth { get; } = depth;
}

/// <summary>A Python list (only found beside a state dict, e.g. in a training checkpoint's optimizer state).</summary>
internal sealed class PickleList
{
    public List<object> Items { get; } = [];
}

/// <summary>The callables a state dict may name with GLOBAL.</summary>
internal enum PickleFunction { OrderedDict, RebuildTensorV2, RebuildParameter }

/// <summary>A whitelisted global that can be called through REDUCE.</summary>
internal sealed record PickleCallable(PickleFunction Function, string QualifiedName);

/// <summary>A <c>torch.*Storage</c> class, only usable inside a persistent id.</summary>
internal sealed record TorchStorageType(TensorDType DType, string QualifiedName);

/// <summary>A persistent id <c>('storage', type, key, location, numel)</c>: storage <c>data/&lt;key&gt;</c> of the archive.</summary>
internal sealed record TorchStorageRef(TensorDType DType, string Key, string Location, long ElementCount);

/// <summary>The arguments of <c>torch._utils._rebuild_tensor_v2</c>: a strided view of a storage.</summary>
internal sealed record TorchTensorRef(TorchStorageRef Storage, long StorageOffset, long[] Shape, long[] Stride);
