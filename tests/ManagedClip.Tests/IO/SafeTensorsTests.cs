using System.Buffers.Binary;
using System.Text;
using ManagedClip.IO.Formats;

namespace ManagedClip.Tests.IO;

/// <summary>The safetensors reader's validation on hand-made headers, and the writer's layout and safety.</summary>
public sealed class SafeTensorsTests : IDisposable
{
    private readonly TempFolder folder = new();

    public void Dispose() => folder.Dispose();

    /// <summary>8-byte length + <paramref name="header"/> + <paramref name="dataBytes"/> bytes of data.</summary>
    private static byte[] File(string header, int dataBytes, ulong? claimedHeaderLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, claimedHeaderLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return bytes;
    }

    private InvalidDataException Refused(byte[] bytes)
    {
        var path = folder.Write($"{Guid.NewGuid():N}.safetensors", bytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<InvalidDataException>(() => SafeTensorsFile.Open(path).Dispose());
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 4_000_000 + 8L * bytes.Length, "refusal allocated too much");
        Assert.Contains(path, error.Message);
        return error;
    }

    private const string Two = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""";

    [Fact]
    public void ReadsAValidFileWithMetadataAndEmptyAndScalarTensors()
    {
        var header = """{"__metadata__":{"format":"pt"},"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}""";
        var bytes = File(header, 4);
        BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(bytes.Length - 4), 2.5f);
        using var store = SafeTensorsFile.Open(folder.Write("ok.safetensors", bytes));
        Assert.Equal(["e", "s"], store.Names);
        Assert.Equal(0, store.GetFloat32("e").Length);
        Assert.Equal([2.5f], store.GetFloat32("s").ToArray());
        Assert.Equal("pt", store.Metadata["format"]);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "tensor 'b' overlaps tensor 'a'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", 12, "4 unindexed bytes between tensor 'a' and tensor 'b'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "4 unindexed bytes between the start of the data section and tensor 'a'")]
    [InlineData(Two, 16, "4 bytes after tensor 'b' belong to no tensor")]
    [InlineData("""{"a":{"dtype":"F32","shape":[250000000000000],"data_offsets":[0,1000000000000000]}}""", 8, "tensor 'a': data_offsets [0, 1000000000000000] reach past the 8-byte data section")]
    [InlineData("""{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}""", 8, "tensor 'a': shape [4611686018427387904, 4] has too many elements")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "tensor 'a': F32 [3] needs 12 bytes but data_offsets [0, 8] span 8")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "tensor 'a': 'shape' must hold non-negative integers, found -2")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}""", 8, "'shape' must hold non-negative integers, found 2.0")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", 8, "end before they begin")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""", 8, "must hold two numbers")]
    [InlineData("""{"a":{"dtype":"Q8","shape":[2],"data_offsets":[0,8]}}""", 8, "tensor 'a': unknown dtype 'Q8'")]
    [InlineData("""{"a":{"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}""", 8, "tensor 'a': dtype 'F8_E4M3' is not supported")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}}""", 8, "unexpected field 'extra'")]
    [InlineData("""{"a":{"shape":[2],"data_offsets":[0,8]}}""", 8, "'dtype' must be a string")]
    [InlineData("""{"a":[1,2]}""", 8, "tensor 'a': header entry must be an object")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 8, "lists 'a' twice")]
    [InlineData("""{"__metadata__":{"n":1}}""", 0, "'__metadata__' entry 'n' must be a string")]
    [InlineData("""[1,2,3]""", 0, "must begin with '{'")]
    [InlineData("""{"a":""", 0, "not valid JSON")]
    [InlineData("""   {}""", 0, "must begin with '{'")]
    public void RefusesInvalidHeaders(string header, int dataBytes, string expected) =>
        Assert.Contains(expected, Refused(File(header, dataBytes)).Message);

    [Fact]
    public void RefusesAHeaderLengthOfTenToTheFifteen() =>
        Assert.Contains("header length 1000000000000000 exceeds the 100000000-byte limit",
            Refused(File("{}", 0, claimedHeaderLength: 1_000_000_000_000_000)).Message);

    [Fact]
    public void RefusesAHeaderLengthPastTheFileEnd() =>
        Assert.Contains("header length 1000 is larger than the rest of the 10-byte file",
            Refused(File("{}", 0, claimedHeaderLength: 1000)).Message);

    [Fact]
    public void RefusesEmptyAndTinyFiles()
    {
        Assert.Contains("is empty (0 bytes)", Refused([]).Message);
        Assert.Contains("too short for a safetensors file", Refused([1, 2, 3]).Message);
    }

    [Fact]
    public void OpenWeightsNamesGarbageAndEmptyFiles()
    {
        var garbage = folder.Write("garbage.bin", Encoding.ASCII.GetBytes("hello, this is not a model"));
        var error = Assert.Throws<InvalidDataException>(() => TensorFiles.OpenWeights(garbage));
        Assert.Contains($"{garbage}: not a weights file ManagedClip reads", error.Message);
        Assert.Contains("68656C6C6F", error.Message); // the first bytes, in hex

        var empty = folder.Write("empty.bin", []);
        Assert.Contains("is empty (0 bytes)", Assert.Throws<InvalidDataException>(() => TensorFiles.OpenWeights(empty)).Message);
        Assert.Throws<FileNotFoundException>(() => TensorFiles.OpenWeights(folder.File("missing.bin")));
    }

    [Fact]
    public void WriterRoundTripsF32F16AndI64InTheReferenceLayout()
    {
        var path = folder.File("w.safetensors");
        float[] floats = [1.5f, -2f, 3.25f];
        Half[] halves = [(Half)0.5f, (Half)(-1.25f)];
        long[] longs = [7, -8, long.MaxValue];
        SafeTensorsWriter.Write(path,
        [
            SafeTensorsWriter.Float32("z.float", [3], floats),
            SafeTensorsWriter.Float16("a.half", [2, 1], halves),
            SafeTensorsWriter.Int64("m.long", [3], longs),
        ], new Dictionary<string, string> { ["format"] = "pt" });

        using (var store = SafeTensorsFile.Open(path))
        {
            Assert.Equal(floats, store.GetFloat32("z.float").ToArray());
            Assert.Equal([0.5f, -1.25f], store.GetFloat32("a.half").ToArray()); // exact in F16
            Assert.Equal(longs, store.GetInt64("m.long"));
            Assert.Equal([2L, 1], store.Info("a.half").Shape);
            Assert.Equal("pt", store.Metadata["format"]);
        }

        // Layout: header padded with spaces to a multiple of 8; data ordered by element size, then name.
        var bytes = System.IO.File.ReadAllBytes(path);
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        var header = Encoding.UTF8.GetString(bytes, 8, headerLength);
        Assert.StartsWith("""{"__metadata__":{"format":"pt"},"m.long":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},"z.float":""", header);
        Assert.Matches("^[^ ]*} *$", header);
        Assert.Empty(Directory.GetFiles(folder.Path, "*.tmp"));
    }

    [Fact]
    public void WriterRefusesToOverwriteUnlessAsked()
    {
        var path = folder.Write("exists.safetensors", [1, 2, 3]);
        var entry = SafeTensorsWriter.Float32("x", [1], new float[] { 1 });
        var error = Assert.Throws<IOException>(() => SafeTensorsWriter.Write(path, [entry]));
        Assert.Contains("already exists", error.Message);
        Assert.Equal([1, 2, 3], System.IO.File.ReadAllBytes(path));

        SafeTensorsWriter.Write(path, [entry], overwrite: true);
        using var store = SafeTensorsFile.Open(path);
        Assert.Equal([1f], store.GetFloat32("x").ToArray());
    }

    [Fact]
    public void WriterRefusesACallbackThatWritesTheWrongLengthAndLeavesNoFile()
    {
        var path = folder.File("short.safetensors");
        var entry = new SafeTensorsWriter.Entry(new TensorInfo("x", TensorDType.F32, [4]), s => s.Write(new byte[12]));
        Assert.Contains("needs 16 bytes, its data callback wrote 12", Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [entry])).Message);
        Assert.Empty(Directory.GetFileSystemEntries(folder.Path));
    }

    [Fact]
    public void ConvertedFloatTypesAreCachedAndExact()
    {
        var path = folder.File("h.safetensors");
        SafeTensorsWriter.Write(path, [SafeTensorsWriter.Float16("h", [2], new Half[] { (Half)1, (Half)0.25f })]);
        using var store = SafeTensorsFile.Open(path);
        var first = store.GetFloat32("h");
        var second = store.GetFloat32("h");
        Assert.True(first == second, "a converted tensor is computed once and the same memory returned");
        Assert.Equal([1f, 0.25f], first.ToArray());
        Assert.Throws<InvalidDataException>(() => store.GetInt64("h"));
    }

    [Fact]
    public void ConcurrentReadersOfAConvertedTensorShareOneConversion()
    {
        var path = folder.File("bf.safetensors");
        // BF16 bits 0x3FC0 = 1.5, 0xC000 = -2 (bfloat16 is the top half of a float32).
        var entry = new SafeTensorsWriter.Entry(new TensorInfo("b", TensorDType.BF16, [2]), s => s.Write([0xC0, 0x3F, 0x00, 0xC0]));
        SafeTensorsWriter.Write(path, [entry]);
        using var store = SafeTensorsFile.Open(path);
        var results = Enumerable.Range(0, 16).AsParallel().WithDegreeOfParallelism(8)
            .Select(_ => store.GetFloat32("b").ToArray()).ToList();
        Assert.All(results, values => Assert.Equal([1.5f, -2f], values));
        Assert.True(store.GetFloat32("b") == store.GetFloat32("b"), "one cached conversion");
    }

    [Fact]
    public void MissingTensorAndUseAfterDisposeAreClearErrors()
    {
        var path = folder.File("one.safetensors");
        SafeTensorsWriter.Write(path, [SafeTensorsWriter.Float32("x", [1], new float[] { 1 })]);
        var store = SafeTensorsFile.Open(path);
        Assert.Contains("no tensor named 'y'", Assert.Throws<KeyNotFoundException>(() => store.Info("y")).Message);
        store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => store.GetFloat32("x").Length);
    }
}
