using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Numerics.Tensors;

namespace ManagedClip.IO.Formats;

/// <summary>Where one validated tensor lies in a mapped file.</summary>
/// <param name="Info">Name, dtype and shape.</param>
/// <param name="Offset">Absolute file offset of the first byte.</param>
/// <param name="ByteCount">Element count × element size (already checked against the file).</param>
internal readonly record struct MappedTensor(TensorInfo Info, long Offset, long ByteCount);

/// <summary>
/// The part shared by the safetensors and torch readers once their headers are validated: name lookup,
/// zero-copy float32 views of the mapping, converted (cached) float32 copies of F16/BF16/F64, and integer widening.
/// </summary>
internal sealed unsafe class MappedTensorTable : IDisposable
{
    private readonly MappedFile file;
    private readonly Dictionary<string, MappedTensor> byName;
    private readonly ConcurrentDictionary<string, Lazy<float[]>> converted = new();
    private bool disposed;

    /// <summary>Tensor names in file order.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Takes ownership of <paramref name="file"/>; every tensor range must already lie inside it.</summary>
    public MappedTensorTable(MappedFile file, IReadOnlyList<MappedTensor> tensors)
    {
        this.file = file;
        byName = new Dictionary<string, MappedTensor>(tensors.Count, StringComparer.Ordinal);
        var names = new List<string>(tensors.Count);
        foreach (var tensor in tensors)
        {
            if (!file.Contains(tensor.Offset, tensor.ByteCount))
                throw new InvalidDataException($"{file.Path}: tensor '{tensor.Info.Name}' lies outside the file.");
            if (!byName.TryAdd(tensor.Info.Name, tensor))
                throw new InvalidDataException($"{file.Path}: tensor '{tensor.Info.Name}' appears twice.");
            names.Add(tensor.Info.Name);
        }
        Names = names;
    }

    public bool Contains(string name) => byName.ContainsKey(name);

    public MappedTensor Get(string name)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return byName.TryGetValue(name, out var tensor)
            ? tensor
            : throw new KeyNotFoundException($"{file.Path}: no tensor named '{UserText.Quote(name)}'.");
    }

    /// <summary>The tensor's stored bytes (little-endian, row-major).</summary>
    public ReadOnlySpan<byte> RawBytes(string name)
    {
        var tensor = Get(name);
        return file.Bytes(tensor.Offset, tensor.ByteCount);
    }

    public ReadOnlySpan<float> GetFloat32(string name)
    {
        var tensor = Get(name);
        var count = checked((int)tensor.Info.ElementCount);
        switch (tensor.Info.DType)
        {
            case TensorDType.F32:
                // Zero-copy: a view straight into the mapping.
                return new ReadOnlySpan<float>(file.Pointer(tensor.Offset, tensor.ByteCount), count);
            case TensorDType.F16 or TensorDType.BF16 or TensorDType.F64:
                // Lazy<T> (ExecutionAndPublication) converts each tensor once even when threads race for it.
                return converted.GetOrAdd(name, _ => new Lazy<float[]>(() =>
                {
                    // Pinned, like the mapping itself: models keep pointers into the converted weights (see TensorStore.GetFloat32).
                    var result = GC.AllocateUninitializedArray<float>(count, pinned: true);
                    ConvertInto(tensor, result);
                    return result;
                })).Value;
            default:
                throw new InvalidDataException(
                    $"{file.Path}: tensor '{UserText.Quote(name)}' is {tensor.Info.DType}, not a floating-point type.");
        }
    }

    /// <summary>Copies a float tensor into <paramref name="destination"/> (F32 by plain reads; other types converted).</summary>
    public void CopyFloat32(string name, Span<float> destination)
    {
        var tensor = Get(name);
        if (destination.Length != tensor.Info.ElementCount)
            throw new ArgumentException($"{file.Path}: tensor '{UserText.Quote(name)}' has {tensor.Info.ElementCount} elements, the destination {destination.Length}.");
        switch (tensor.Info.DType)
        {
            case TensorDType.F32:
                file.ReadAt(tensor.Offset, MemoryMarshal.AsBytes(destination));
                break;
            case TensorDType.F16 or TensorDType.BF16 or TensorDType.F64:
                ConvertInto(tensor, destination); // straight into the caller's copy: nothing cached beside it
                break;
            default:
                throw new InvalidDataException(
                    $"{file.Path}: tensor '{UserText.Quote(name)}' is {tensor.Info.DType}, not a floating-point type.");
        }
    }

    /// <summary>The tensors with a cached float32 conversion (F16, BF16, F64 read through <see cref="GetFloat32"/>).</summary>
    public IReadOnlyCollection<string> ConvertedNames => converted.Keys.ToArray();

    public long[] GetInt64(string name)
    {
        var tensor = Get(name);
        var bytes = file.Bytes(tensor.Offset, tensor.ByteCount);
        var result = new long[tensor.Info.ElementCount];
        switch (tensor.Info.DType)
        {
            case TensorDType.I64: MemoryMarshal.Cast<byte, long>(bytes).CopyTo(result); break;
            case TensorDType.I32: Widen(MemoryMarshal.Cast<byte, int>(bytes), result); break;
            case TensorDType.I16: Widen(MemoryMarshal.Cast<byte, short>(bytes), result); break;
            case TensorDType.I8: Widen(MemoryMarshal.Cast<byte, sbyte>(bytes), result); break;
            case TensorDType.U8 or TensorDType.Bool: Widen(bytes, result); break;
            default:
                throw new InvalidDataException($"{file.Path}: tensor '{UserText.Quote(name)}' is {tensor.Info.DType}, not an integer type.");
        }
        return result;
    }

    /// <summary>Widens an F16, BF16 or F64 tensor into <paramref name="result"/> (exactly its element count).</summary>
    private void ConvertInto(MappedTensor tensor, Span<float> result)
    {
        var bytes = file.Bytes(tensor.Offset, tensor.ByteCount);
        switch (tensor.Info.DType)
        {
            case TensorDType.F16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<byte, Half>(bytes), result);
                break;
            case TensorDType.BF16:
                // bfloat16 is the upper half of a float32: shifting the bits up is exact.
                var halves = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = BitConverter.Int32BitsToSingle(halves[i] << 16);
                break;
            case TensorDType.F64:
                var doubles = MemoryMarshal.Cast<byte, double>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = (float)doubles[i];
                break;
            default:
                throw new InvalidOperationException($"{tensor.Info.DType} is not converted");
        }
    }

    private static void Widen<T>(ReadOnlySpan<T> source, long[] destination) where T : unmanaged, System.Numerics.IBinaryInteger<T>
    {
        for (int i = 0; i < source.Length; i++) destination[i] = long.CreateTruncating(source[i]);
    }

    public void Dispose()
    {
        disposed = true;
        converted.Clear();
        file.Dispose();
    }
}
