using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace ManagedClip.IO;

/// <summary>
/// A memory-mapped .safetensors file: 8-byte little-endian header length, a JSON header
/// {name: {dtype, shape, data_offsets}}, then raw little-endian tensor data.
/// (Minimal version: the IO work hardens validation.)
/// </summary>
public sealed unsafe class SafeTensorsFile : TensorStore
{
    private readonly MemoryMappedFile map;
    private readonly MemoryMappedViewAccessor view;
    private readonly byte* basePointer;
    private readonly long dataStart;
    private readonly Dictionary<string, (TensorInfo Info, long Begin, long End)> entries = new();
    private readonly List<string> names = new();
    private readonly Dictionary<string, float[]> converted = new();

    public override string SourcePath { get; }
    public override IReadOnlyList<string> Names => names;

    private SafeTensorsFile(string path)
    {
        SourcePath = path;
        long length = new FileInfo(path).Length;
        if (length < 8) throw new InvalidDataException($"{path}: not a safetensors file (only {length} bytes).");
        map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        basePointer = p + view.PointerOffset;
        ulong headerLength = *(ulong*)basePointer;
        if (headerLength > 100_000_000 || (long)headerLength > length - 8)
            throw new InvalidDataException($"{path}: header length {headerLength} is impossible for a {length}-byte file.");
        dataStart = 8 + (long)headerLength;
        using var doc = JsonDocument.Parse(new ReadOnlyMemory<byte>(new ReadOnlySpan<byte>(basePointer + 8, (int)headerLength).ToArray()));
        foreach (var prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__") continue;
            var dtype = prop.Value.GetProperty("dtype").GetString() switch
            {
                "F32" => TensorDType.F32, "F16" => TensorDType.F16, "BF16" => TensorDType.BF16, "I64" => TensorDType.I64,
                var other => throw new InvalidDataException($"{path}: tensor '{prop.Name}' has unsupported dtype '{other}'."),
            };
            var shape = prop.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var offsets = prop.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            entries[prop.Name] = (new TensorInfo(prop.Name, dtype, shape), dataStart + offsets[0], dataStart + offsets[1]);
            names.Add(prop.Name);
        }
    }

    /// <summary>Maps and validates a safetensors file.</summary>
    public static SafeTensorsFile Open(string path) => new(path);

    public override TensorInfo Info(string name) => entries[name].Info;
    public override bool Contains(string name) => entries.ContainsKey(name);

    public override ReadOnlySpan<float> GetFloat32(string name)
    {
        var (info, begin, end) = entries[name];
        var bytes = new ReadOnlySpan<byte>(basePointer + begin, checked((int)(end - begin)));
        switch (info.DType)
        {
            case TensorDType.F32: return MemoryMarshal.Cast<byte, float>(bytes);
            case TensorDType.F16:
                lock (converted)
                {
                    if (!converted.TryGetValue(name, out var f))
                        converted[name] = f = MemoryMarshal.Cast<byte, Half>(bytes).ToArray().Select(h => (float)h).ToArray();
                    return f;
                }
            default: throw new InvalidDataException($"{SourcePath}: tensor '{name}' is {info.DType}, not a float type.");
        }
    }

    public override long[] GetInt64(string name)
    {
        var (info, begin, end) = entries[name];
        if (info.DType != TensorDType.I64) throw new InvalidDataException($"{SourcePath}: tensor '{name}' is {info.DType}, not I64.");
        return MemoryMarshal.Cast<byte, long>(new ReadOnlySpan<byte>(basePointer + begin, checked((int)(end - begin)))).ToArray();
    }

    protected override void Dispose(bool disposing)
    {
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
    }
}
