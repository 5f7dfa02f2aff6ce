namespace ManagedClip.IO.Formats;

/// <summary>
/// A state dict saved by <c>torch.save</c> (torch ≥ 1.6 zip format, e.g. <c>open_clip_pytorch_model.bin</c>), read
/// without Python and without executing anything: the zip directory is parsed by <c>ZipDirectory</c>, the
/// <c>data.pkl</c> by a restricted pickle machine (<c>StateDictUnpickler</c>) that only understands tensors, storages
/// and dicts. Storages are stored uncompressed in the archive, so float32 tensors are zero-copy views of the mapped
/// file, like <see cref="SafeTensorsFile"/>. Only contiguous tensors are accepted.
/// </summary>
internal sealed class TorchCheckpoint : MappedTensorStore
{
    /// <summary>Largest <c>data.pkl</c> accepted (the full BiomedCLIP one is about 40 kB).</summary>
    public const long MaxPickleBytes = 64L << 20;

    private TorchCheckpoint(string path, MappedTensorTable table) : base(path, table)
    {
    }

    /// <summary>Maps and validates a torch zip checkpoint holding a flat state dict (name → tensor).</summary>
    /// <exception cref="InvalidDataException">The file is not such a checkpoint or breaks a rule; the message says which file, member or tensor, and why.</exception>
    public static TorchCheckpoint Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            return new TorchCheckpoint(path, new MappedTensorTable(file, ReadTensors(file)));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static List<MappedTensor> ReadTensors(MappedFile file)
    {
        var path = file.Path;
        var head = file.Bytes(0, Math.Min(file.Length, 4));
        if (head.Length >= 1 && head[0] == 0x80)
            throw new InvalidDataException(
                $"{path}: unsupported legacy (pre-1.6, non-zip) torch checkpoint format; re-save it with torch>=1.6 " +
                "(torch.save(torch.load(f), f2)) or convert it to safetensors.");
        if (!head.SequenceEqual("PK\x03\x04"u8))
            throw new InvalidDataException($"{path}: not a torch zip checkpoint (it does not start with a zip local header).");

        var entries = ZipDirectory.Read(file).ToDictionary(e => e.Name, StringComparer.Ordinal);
        var prefix = ArchivePrefix(path, entries.Keys);
        CheckByteOrder(file, entries, prefix);

        var pickleEntry = entries[prefix + "data.pkl"];
        var source = $"{path}:{UserText.Quote(pickleEntry.Name)}";
        if (!pickleEntry.IsStored) throw new InvalidDataException($"{source}: compressed members are not supported (torch.save stores them uncompressed).");
        if (pickleEntry.Size > MaxPickleBytes)
            throw new InvalidDataException($"{source}: {pickleEntry.Size} bytes is over the {MaxPickleBytes}-byte limit for a state-dict pickle.");
        var root = StateDictUnpickler.Load(source, file.Bytes(pickleEntry.DataOffset, pickleEntry.Size).ToArray());
        if (root is not PickleDict checkpoint)
            throw new InvalidDataException($"{source}: the pickle holds {PickleKind(root)}, not a state dict (a dict of tensors).");
        // open_clip's load_state_dict: a training checkpoint keeps the weights under "state_dict" (beside the
        // epoch, optimizer state, …); anything else is the state dict itself.
        var stateDict = checkpoint;
        var wrapped = checkpoint.Entries.FirstOrDefault(e => e.Key is "state_dict");
        if (wrapped.Key is not null)
        {
            stateDict = wrapped.Value as PickleDict
                ?? throw new InvalidDataException($"{source}: 'state_dict' holds {PickleKind(wrapped.Value)}, not a dict of tensors.");
            source += " ['state_dict']";
        }

        var tensors = new List<MappedTensor>(stateDict.Entries.Count);
        foreach (var (key, value) in stateDict.Entries)
        {
            if (key is not string name) throw new InvalidDataException($"{source}: state-dict key {key} is not a string.");
            if (value is not TorchTensorRef tensor)
                throw new InvalidDataException($"{source}: entry '{UserText.Quote(name)}' is {PickleKind(value)}, not a tensor (only a state dict {{name: tensor}} is supported).");
            tensors.Add(Locate(path, name, tensor, entries, prefix));
        }
        return StateDictKeys.WithoutDataParallelPrefix(tensors, tensors.FirstOrDefault().Info?.Name, source);
    }

    private static string PickleKind(object value) => value switch
    {
        PickleDict => "a dict",
        PickleList => "a list",
        PickleTuple => "a tuple",
        TorchTensorRef => "a tensor",
        string => "a string",
        long or double => "a number",
        bool => "a boolean",
        PickleNone => "None",
        _ => "another kind of value",
    };

    /// <summary>torch puts every member under one folder (the file's stem, or <c>archive/</c>): <c>&lt;prefix&gt;data.pkl</c>, <c>&lt;prefix&gt;data/&lt;key&gt;</c>.</summary>
    private static string ArchivePrefix(string path, IEnumerable<string> names)
    {
        var pickles = names.Where(n => n.EndsWith("/data.pkl", StringComparison.Ordinal) && n.IndexOf('/') == n.Length - "/data.pkl".Length).ToList();
        if (pickles.Count != 1)
            throw new InvalidDataException(pickles.Count == 0
                ? $"{path}: zip archive has no '<folder>/data.pkl' member, so it is not a torch checkpoint."
                : $"{path}: zip archive has several data.pkl members ({UserText.Quote(string.Join(", ", pickles))}).");
        return pickles[0][..^"data.pkl".Length];
    }

    /// <summary>Newer torch records the byte order of the storages; we only read little-endian ones.</summary>
    private static void CheckByteOrder(MappedFile file, Dictionary<string, ZipEntry> entries, string prefix)
    {
        if (!entries.TryGetValue(prefix + "byteorder", out var entry)) return; // older torch: always little-endian
        var text = entry.IsStored && entry.Size <= 16 ? System.Text.Encoding.ASCII.GetString(file.Bytes(entry.DataOffset, entry.Size)).Trim() : "?";
        if (text != "little")
            throw new InvalidDataException($"{file.Path}: storages are stored with byte order '{text}'; only 'little' is supported.");
    }

    private static MappedTensor Locate(string path, string name, TorchTensorRef tensor, Dictionary<string, ZipEntry> entries, string prefix)
    {
        InvalidDataException Error(string what) => new($"{path}: tensor '{UserText.Quote(name)}': {what}.");
        var storage = tensor.Storage;
        var dtype = storage.DType;
        long elementSize = TensorDTypes.ElementSize(dtype);

        if (!entries.TryGetValue(prefix + "data/" + storage.Key, out var entry))
            throw Error($"its persistent id names storage '{UserText.Quote(storage.Key)}', which is not a member of the archive (expected '{UserText.Quote(prefix + "data/" + storage.Key)}')");
        if (!entry.IsStored) throw Error($"storage member '{entry.Name}' is compressed (method {entry.Method}); torch.save stores storages uncompressed");
        if (storage.ElementCount > entry.Size / elementSize)
            throw Error($"storage '{UserText.Quote(storage.Key)}' claims {storage.ElementCount} {dtype} elements but its member holds only {entry.Size} bytes");

        if (tensor.Shape.Length != tensor.Stride.Length)
            throw Error($"shape {TensorDTypes.ShapeText(tensor.Shape)} and stride {TensorDTypes.ShapeText(tensor.Stride)} differ in rank");
        long? count = TensorDTypes.CheckedElementCount(tensor.Shape);
        if (count is null) throw Error($"invalid shape {TensorDTypes.ShapeText(tensor.Shape)}");
        if (count > 0 && !IsContiguous(tensor.Shape, tensor.Stride))
            throw Error($"non-contiguous layout (shape {TensorDTypes.ShapeText(tensor.Shape)}, stride {TensorDTypes.ShapeText(tensor.Stride)}) is not supported; save t.contiguous()");
        if (tensor.StorageOffset < 0 || tensor.StorageOffset > storage.ElementCount || count > storage.ElementCount - tensor.StorageOffset)
            throw Error($"elements [{tensor.StorageOffset}, +{count}) lie outside storage '{UserText.Quote(storage.Key)}' of {storage.ElementCount} elements");
        return new MappedTensor(new TensorInfo(name, dtype, tensor.Shape),
            entry.DataOffset + tensor.StorageOffset * elementSize, count.Value * elementSize);
    }

    /// <summary>Row-major contiguity as torch defines it: dimensions of size 1 may carry any stride.</summary>
    private static bool IsContiguous(long[] shape, long[] stride)
    {
        long expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 1) continue;
            if (stride[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }
}
