using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ManagedClip.IO.Formats;

/// <summary>
/// Writes .safetensors files the way the reference (Rust) implementation lays them out: tensors ordered by
/// element size (largest first, so every tensor is aligned to its element size) then by name, the header listing
/// <c>__metadata__</c> first and then the tensors in data order, padded with spaces to a multiple of 8 bytes.
/// The file appears atomically (temporary file + rename) and an existing file is only replaced when asked.
/// </summary>
internal static class SafeTensorsWriter
{
    /// <summary>One tensor to write: its name, dtype and shape, and a callback that writes exactly its bytes.</summary>
    /// <param name="Info">Name, dtype and shape.</param>
    /// <param name="WriteData">Writes element count × element size little-endian bytes, row-major.</param>
    public sealed record Entry(TensorInfo Info, Action<Stream> WriteData);

    /// <summary>A float32 tensor from values in memory.</summary>
    public static Entry Float32(string name, long[] shape, ReadOnlyMemory<float> values) =>
        new(new TensorInfo(name, TensorDType.F32, shape), s => s.Write(MemoryMarshal.AsBytes(values.Span)));

    /// <summary>A float16 tensor from values in memory (the tests write half-precision checkpoints with it).</summary>
    internal static Entry Float16(string name, long[] shape, ReadOnlyMemory<Half> values) =>
        new(new TensorInfo(name, TensorDType.F16, shape), s => s.Write(MemoryMarshal.AsBytes(values.Span)));

    /// <summary>An int64 tensor from values in memory.</summary>
    public static Entry Int64(string name, long[] shape, ReadOnlyMemory<long> values) =>
        new(new TensorInfo(name, TensorDType.I64, shape), s => s.Write(MemoryMarshal.AsBytes(values.Span)));

    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/>.</summary>
    /// <exception cref="IOException"><paramref name="path"/> exists and <paramref name="overwrite"/> is false.</exception>
    /// <exception cref="ArgumentException">A duplicate or reserved name, a negative shape, or a callback that wrote the wrong number of bytes.</exception>
    public static void Write(string path, IEnumerable<Entry> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        bool overwrite = false)
    {
        var ordered = Order(tensors);
        var header = Header(ordered, metadata);
        AtomicFile.Write(path, overwrite, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var (entry, byteCount) in ordered)
            {
                long before = stream.Position;
                entry.WriteData(stream);
                long written = stream.Position - before;
                if (written != byteCount)
                    throw new ArgumentException(
                        $"{path}: tensor '{entry.Info.Name}' ({entry.Info.DType} {entry.Info.ShapeText}) needs {byteCount} bytes, its data callback wrote {written}.");
            }
        });
    }

    private static List<(Entry Entry, long ByteCount)> Order(IEnumerable<Entry> tensors)
    {
        var list = new List<(Entry, long)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in tensors)
        {
            var info = entry.Info;
            if (info.Name == SafeTensorsHeader.MetadataKey)
                throw new ArgumentException($"'{SafeTensorsHeader.MetadataKey}' is reserved and cannot name a tensor.");
            if (!names.Add(info.Name)) throw new ArgumentException($"tensor '{info.Name}' is listed twice.");
            long elementSize = TensorDTypes.ElementSize(info.DType);
            long? count = TensorDTypes.CheckedElementCount(info.Shape);
            if (count is null || count > long.MaxValue / elementSize)
                throw new ArgumentException($"tensor '{info.Name}' has an invalid shape {info.ShapeText}.");
            list.Add((entry, count.Value * elementSize));
        }
        return list
            .OrderByDescending(t => TensorDTypes.ElementSize(t.Item1.Info.DType))
            .ThenBy(t => t.Item1.Info.Name, StringComparer.Ordinal)
            .ToList();
    }

    private static byte[] Header(List<(Entry Entry, long ByteCount)> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        // serde_json (used by the reference implementation) writes UTF-8 as is; so do we.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(SafeTensorsHeader.MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (entry, byteCount) in ordered)
            {
                json.WriteStartObject(entry.Info.Name);
                json.WriteString("dtype", TensorDTypes.SafeTensorsName(entry.Info.DType));
                json.WriteStartArray("shape");
                foreach (var dim in entry.Info.Shape) json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + byteCount);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += byteCount;
            }
            json.WriteEndObject();
        }
        // Pad with spaces so the data section starts 8-byte aligned.
        while (buffer.Length % 8 != 0) buffer.WriteByte((byte)' ');
        if (buffer.Length > SafeTensorsHeader.MaxHeaderBytes)
            throw new ArgumentException($"the header would be {buffer.Length} bytes, over the {SafeTensorsHeader.MaxHeaderBytes}-byte limit readers enforce.");
        return buffer.ToArray();
    }
}
