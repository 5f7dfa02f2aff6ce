using System.Runtime.InteropServices;
using System.Text.Json;

namespace ManagedClip.Benchmarks.Onnx;

/// <summary>
/// Reads float32 and int64 tensors from a reference .safetensors file (e.g. <c>preprocess.safetensors</c>, which
/// also holds uint8 images). Only for the validation command: the library's <c>SafeTensorsFile</c> is for model
/// checkpoints, which hold float tensors only.
/// </summary>
internal sealed class ReferenceFile
{
    private readonly string path;
    private readonly long dataStart;
    private readonly Dictionary<string, (string DType, long[] Shape, long Begin, long End)> entries = new();

    public ReferenceFile(string path)
    {
        this.path = path;
        using var file = File.OpenRead(path);
        Span<byte> lengthBytes = stackalloc byte[8];
        file.ReadExactly(lengthBytes);
        long headerLength = BitConverter.ToInt64(lengthBytes);
        if (headerLength <= 0 || headerLength > Math.Min(100_000_000, file.Length - 8))
            throw new InvalidDataException($"{path}: header length {headerLength} is impossible for a {file.Length}-byte file.");
        var header = new byte[headerLength];
        file.ReadExactly(header);
        dataStart = 8 + headerLength;
        using var json = JsonDocument.Parse(header);
        foreach (var tensor in json.RootElement.EnumerateObject())
        {
            if (tensor.Name == "__metadata__") continue;
            var offsets = tensor.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var shape = tensor.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            entries[tensor.Name] = (tensor.Value.GetProperty("dtype").GetString()!, shape, offsets[0], offsets[1]);
        }
    }

    public IEnumerable<string> Names => entries.Keys;

    public bool Contains(string name) => entries.ContainsKey(name);

    public float[] Float32(string name) => MemoryMarshal.Cast<byte, float>(Read(name, "F32", sizeof(float))).ToArray();

    public long[] Int64(string name) => MemoryMarshal.Cast<byte, long>(Read(name, "I64", sizeof(long))).ToArray();

    private byte[] Read(string name, string dtype, int elementSize)
    {
        if (!entries.TryGetValue(name, out var entry)) throw new InvalidDataException($"{path}: tensor '{name}' is missing.");
        if (entry.DType != dtype) throw new InvalidDataException($"{path}: tensor '{name}' is {entry.DType}, expected {dtype}.");
        long count = entry.Shape.Aggregate(1L, (a, b) => a * b);
        if (entry.End - entry.Begin != count * elementSize)
            throw new InvalidDataException($"{path}: tensor '{name}' spans {entry.End - entry.Begin} bytes, its shape needs {count * elementSize}.");
        using var file = File.OpenRead(path);
        file.Seek(dataStart + entry.Begin, SeekOrigin.Begin);
        var bytes = new byte[entry.End - entry.Begin];
        file.ReadExactly(bytes);
        return bytes;
    }
}
