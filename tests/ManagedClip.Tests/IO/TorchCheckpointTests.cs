using ManagedClip.IO.Formats;

namespace ManagedClip.Tests.IO;

/// <summary>
/// The torch zip reader on hand-built archives: a valid state dict in every layout torch produces, and hostile or
/// broken files, each of which must be refused with a message that says what was wrong — never executed, never a crash.
/// </summary>
public sealed class TorchCheckpointTests : IDisposable
{
    private static readonly float[] Six = [1, 2, 3, 4, 5, 6];

    /// <summary>{"w": float32 [2,3] over storage "0" (6 floats)} plus extra members exactly as torch lays them out.</summary>
    private static byte[] OneTensorCheckpoint(long offset = 0, long[]? size = null, long[]? stride = null, long numel = 6,
        byte[]? storage = null, string key = "0") =>
        ZipBuilder.Checkpoint(
            new PickleBuilder().Proto().EmptyDict().Put(0).Mark()
                .Unicode("w").Tensor("FloatStorage", key, numel, offset, size ?? [2, 3], stride ?? [3, 1])
                .SetItems().Stop().ToArray(),
            ("0", storage ?? ZipBuilder.Floats(Six)));

    private readonly TempFolder folder = new();

    private TensorStore Open(byte[] file) => TorchCheckpoint.Open(folder.Write($"{Guid.NewGuid():N}.bin", file));

    public void Dispose() => folder.Dispose();

    private static InvalidDataException Refused(byte[] file)
    {
        using var folder = new TempFolder();
        var path = folder.Write("model.bin", file);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => TorchCheckpoint.Open(path).Dispose());
        // Bounded memory: refusing a hostile file costs about its own size, not what its headers claim.
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4_000_000 + 4L * file.Length, "refusal allocated too much");
        Assert.Contains(path, error.Message);
        return error;
    }

    [Fact]
    public void ReadsAHandBuiltStateDict()
    {
        using (var store = Open(OneTensorCheckpoint()))
        {
            Assert.Equal(["w"], store.Names);
            Assert.Equal([2L, 3], store.Info("w").Shape);
            Assert.Equal(Six, store.GetFloat32("w").ToArray());
        }
    }

    [Fact]
    public void ReadsAnOrderedDictWithMetadataAndParameters()
    {
        // What torch.save(model.state_dict()) writes: OrderedDict() + SETITEMS, then BUILD with {'_metadata': ...};
        // tensors saved as nn.Parameter go through _rebuild_parameter(tensor, requires_grad, OrderedDict()).
        var pickle = new PickleBuilder().Proto()
            .Global("collections", "OrderedDict").Put(0).EmptyTuple().Reduce().Put(1).Mark()
            .Unicode("p").Global("torch._utils", "_rebuild_parameter").Mark()
                .Tensor("FloatStorage", "0", 6, 0, [3, 2], [2, 1]).Op(0x88).Get(0).EmptyTuple().Reduce().Tuple().Reduce()
            .Unicode("ids").Tensor("LongStorage", "1", 2, 0, [1, 2], [2, 1])
            .SetItems()
            .EmptyDict().Mark().Unicode("_metadata").Get(0).EmptyTuple().Reduce()
                .Mark().Unicode("").EmptyDict().Mark().Unicode("version").Int(1).SetItems().SetItems()
            .SetItems().Op('b').Stop().ToArray();
        var zip = ZipBuilder.Checkpoint(pickle, ("0", ZipBuilder.Floats(Six)), ("1", [5, 0, 0, 0, 0, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]));
        using var store = Open(zip);
        Assert.Equal(["p", "ids"], store.Names);
        Assert.Equal(Six, store.GetFloat32("p").ToArray());
        Assert.Equal([5L, -2L], store.GetInt64("ids"));
        Assert.Contains("not a floating-point type", Assert.Throws<InvalidDataException>(() => store.GetFloat32("ids").Length).Message);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void ReadsClassicAndZip64Directories(bool zip64EndRecords, bool zip64ExtraFields)
    {
        var pickle = new PickleBuilder().Proto().EmptyDict().Mark()
            .Unicode("w").Tensor("FloatStorage", "0", 6, 0, [6], [1]).SetItems().Stop().ToArray();
        var zip = new ZipBuilder { Zip64EndRecords = zip64EndRecords, Zip64ExtraFields = zip64ExtraFields }
            .Add("archive/data.pkl", pickle).Add("archive/data/0", ZipBuilder.Floats(Six)).ToArray();
        using (var store = Open(zip)) Assert.Equal(Six, store.GetFloat32("w").ToArray());
    }

    [Fact]
    public void StorageOffsetSelectsTheRightElements()
    {
        // A [2] tensor starting at element 3 of the storage: values 4, 5.
        using (var store = Open(OneTensorCheckpoint(offset: 3, size: [2], stride: [1]))) Assert.Equal([4f, 5f], store.GetFloat32("w").ToArray());
    }

    [Fact]
    public void SizeOneDimensionsMayCarryAnyStride()
    {
        // torch reports [1,6] with stride (1,1) as contiguous; so do we.
        using (var store = Open(OneTensorCheckpoint(size: [1, 6], stride: [1, 1]))) Assert.Equal(Six, store.GetFloat32("w").ToArray());
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("subprocess", "Popen")]
    [InlineData("posix", "system")]
    [InlineData("torch", "load")]
    public void RefusesEveryOtherGlobalBeforeAnythingRuns(string module, string name)
    {
        var marker = Path.Combine(Path.GetTempPath(), $"managedclip-pwned-{Guid.NewGuid():N}");
        // The classic exploit: {"w": os.system("touch marker")}.
        var pickle = new PickleBuilder().Proto().EmptyDict().Mark().Unicode("w")
            .Global(module, name).Mark().Unicode($"touch {marker}").Tuple().Reduce()
            .SetItems().Stop().ToArray();
        var error = Refused(ZipBuilder.Checkpoint(pickle));
        Assert.Contains($"refusing global '{module}.{name}'", error.Message);
        Assert.Contains("nothing was imported or executed", error.Message);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void RefusesReduceOnAStorageClass()
    {
        var pickle = new PickleBuilder().Proto().Global("torch", "FloatStorage").EmptyTuple().Reduce().Stop().ToArray();
        Assert.Contains("refusing REDUCE calling torch.FloatStorage", Refused(ZipBuilder.Checkpoint(pickle)).Message);
    }

    [Theory]
    [InlineData(0x93, "STACK_GLOBAL")] // protocol-4 way to import a global
    [InlineData((byte)'i', "INST")]
    [InlineData((byte)'o', "OBJ")]
    [InlineData(0x81, "NEWOBJ")]
    [InlineData((byte)'P', "PERSID")]
    [InlineData(0xFF, "not a pickle opcode")]
    public void RefusesOpcodesAStateDictNeverUses(byte opcode, string name)
    {
        var pickle = new PickleBuilder().Proto().Unicode("os").Unicode("system").Op(opcode).Stop().ToArray();
        var error = Refused(ZipBuilder.Checkpoint(pickle));
        Assert.Contains($"refusing opcode 0x{opcode:X2} {name}".Replace(" not a pickle", " (not a pickle"), error.Message);
    }

    [Fact]
    public void RefusesNewerPickleProtocols() =>
        Assert.Contains("pickle protocol 4", Refused(ZipBuilder.Checkpoint(new PickleBuilder().Proto(4).Stop().ToArray())).Message);

    [Fact]
    public void RefusesAPersistentIdOutsideTheArchive()
    {
        var error = Refused(OneTensorCheckpoint(key: "../../etc/passwd"));
        Assert.Contains("tensor 'w'", error.Message);
        Assert.Contains("storage '../../etc/passwd', which is not a member of the archive", error.Message);
    }

    [Fact]
    public void RefusesAStorageMemberShorterThanItsTensor()
    {
        // The pickle says 6 floats (24 bytes); the member holds 5.
        var error = Refused(OneTensorCheckpoint(storage: ZipBuilder.Floats(1, 2, 3, 4, 5)));
        Assert.Contains("tensor 'w': storage '0' claims 6 F32 elements but its member holds only 20 bytes", error.Message);
    }

    [Fact]
    public void RefusesATensorReachingPastItsStorage()
    {
        var error = Refused(OneTensorCheckpoint(offset: 2));
        Assert.Contains("tensor 'w': elements [2, +6) lie outside storage '0' of 6 elements", error.Message);
    }

    [Fact]
    public void RefusesNonContiguousTensors()
    {
        // The transpose of a [3,2] tensor: shape [2,3], stride (1,2).
        var error = Refused(OneTensorCheckpoint(stride: [1, 2]));
        Assert.Contains("tensor 'w': non-contiguous layout (shape [2, 3], stride [1, 2])", error.Message);
    }

    [Fact]
    public void RefusesATruncatedZip()
    {
        var whole = OneTensorCheckpoint();
        var error = Refused(whole[..(whole.Length / 2)]);
        Assert.Contains("no end-of-central-directory record", error.Message);
    }

    [Fact]
    public void RefusesACentralDirectoryPointingOutsideTheFile()
    {
        var zip = new ZipBuilder { Zip64EndRecords = false }.Add("archive/data.pkl", new PickleBuilder().Proto().EmptyDict().Stop().ToArray()).ToArray();
        // Central directory offset field of the end record (last 22 bytes, offset 16) → far past the end.
        BitConverter.TryWriteBytes(zip.AsSpan(zip.Length - 22 + 16), 0x7FFFFFF0u);
        Assert.Contains("broken zip archive", Refused(zip).Message);
    }

    [Fact]
    public void RefusesZipsWithoutDataPkl() =>
        Assert.Contains("no '<folder>/data.pkl' member",
            Refused(new ZipBuilder().Add("archive/other.txt", [1, 2, 3]).ToArray()).Message);

    [Fact]
    public void RefusesTheLegacyFormatWithAHint()
    {
        // Legacy torch.save files start with a protocol-2 pickle of a magic number.
        var legacy = new PickleBuilder().Proto().Op(0x8a).Raw(10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).Op('.').ToArray();
        var error = Refused(legacy);
        Assert.Contains("unsupported legacy", error.Message);
        Assert.Contains("re-save it with torch>=1.6", error.Message);
    }

    [Theory]
    [InlineData("truncated", "the pickle is truncated")]
    [InlineData("memo", "memo entry 7 is read before it is written")]
    [InlineData("underflow", "stack underflow")]
    [InlineData("nesting", "more than 64 nested marks")]
    [InlineData("deep-tuples", "tuples nested deeper than 64")]
    [InlineData("huge-string", "a 2147483647-byte string")]
    [InlineData("trailing", "1 bytes follow STOP")]
    [InlineData("two-values", "STOP with 2 values")]
    [InlineData("not-a-dict", "not a state dict")]
    [InlineData("not-a-tensor", "entry 'w' is a number, not a tensor")]
    [InlineData("duplicate", "tensor 'w' appears twice")]
    [InlineData("bad-persid", "is not ('storage', type, key, location, numel)")]
    [InlineData("hooks", "refusing a tensor with backward hooks")]
    public void RefusesMalformedPickles(string kind, string expected)
    {
        var p = new PickleBuilder().Proto();
        var pickle = kind switch
        {
            "truncated" => p.EmptyDict().Mark().Unicode("w").ToArray()[..^2],
            "memo" => p.Get(7).Stop().ToArray(),
            "underflow" => p.Op('R').ToArray(),
            "nesting" => Enumerable.Range(0, 65).Aggregate(p, (b, _) => b.Mark()).ToArray(),
            "deep-tuples" => Enumerable.Range(0, 65).Aggregate(p.EmptyTuple(), (b, _) => b.Op(0x85)).Stop().ToArray(),
            "huge-string" => p.Op('X').Raw(0xFF, 0xFF, 0xFF, 0x7F).ToArray(),
            "trailing" => p.EmptyDict().Stop().Op('N').ToArray(),
            "two-values" => p.EmptyDict().EmptyDict().Stop().ToArray(),
            "not-a-dict" => p.EmptyTuple().Stop().ToArray(),
            "not-a-tensor" => p.EmptyDict().Mark().Unicode("w").Int(5).SetItems().Stop().ToArray(),
            "duplicate" => p.EmptyDict().Mark()
                .Unicode("w").Tensor("FloatStorage", "0", 6, 0, [6], [1])
                .Unicode("w").Tensor("FloatStorage", "0", 6, 0, [6], [1]).SetItems().Stop().ToArray(),
            "bad-persid" => p.Mark().Unicode("storage").Unicode("x").Tuple().BinPersId().Stop().ToArray(),
            "hooks" => p.Global("torch._utils", "_rebuild_tensor_v2").Mark()
                .Storage("FloatStorage", "0", 6).Int(0).IntTuple(6).IntTuple(1).False()
                .EmptyDict().Mark().Unicode("hook").Int(1).SetItems()
                .Tuple().Reduce().Stop().ToArray(),
            _ => throw new ArgumentException(kind),
        };
        var error = Refused(ZipBuilder.Checkpoint(pickle, ("0", ZipBuilder.Floats(Six))));
        Assert.Contains(expected, error.Message);
    }
}
