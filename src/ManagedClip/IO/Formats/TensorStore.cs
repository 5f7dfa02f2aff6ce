namespace ManagedClip.IO.Formats;

/// <summary>Element types a checkpoint may hold.</summary>
internal enum TensorDType { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool }

/// <summary>Name, element type and shape of one stored tensor.</summary>
/// <param name="Name">State-dict key, e.g. <c>visual.trunk.blocks.0.attn.qkv.weight</c>.</param>
/// <param name="DType">Element type as stored.</param>
/// <param name="Shape">Dimensions, outermost first; empty for a 0-D scalar.</param>
internal sealed record TensorInfo(string Name, TensorDType DType, long[] Shape)
{
    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Shape as text, e.g. <c>[2304, 768]</c>.</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}

/// <summary>
/// A read-only collection of named tensors backed by a file (safetensors or a torch zip checkpoint).
/// Float32 tensors are returned as zero-copy views of the mapped file; other float types are converted once.
/// </summary>
internal abstract class TensorStore : IDisposable
{
    /// <summary>Path of the file the tensors come from (used in error messages).</summary>
    public abstract string SourcePath { get; }

    /// <summary>All tensor names, in file order.</summary>
    public abstract IReadOnlyList<string> Names { get; }

    /// <summary>Metadata of one tensor.</summary>
    /// <exception cref="KeyNotFoundException">No tensor of that name.</exception>
    public abstract TensorInfo Info(string name);

    /// <summary>True if a tensor of that name exists.</summary>
    public abstract bool Contains(string name);

    /// <summary>
    /// The tensor's elements as float32 in row-major order. F32 is a view of the mapped file; F16, BF16 and F64
    /// are converted on first use and cached. Either way the memory never moves and stays valid until
    /// <see cref="Dispose()"/>, so a model may keep its address (the towers read their heads and the word embeddings
    /// in place).
    /// </summary>
    /// <remarks>Implementations must return memory that does not move while the store is open (a mapping or a pinned
    /// array): the towers keep its address.</remarks>
    public abstract ReadOnlySpan<float> GetFloat32(string name);

    /// <summary>
    /// Copies the tensor's float32 elements into <paramref name="destination"/> (exactly its element count). Use it to
    /// build a private copy: F32 is read from the file rather than through the mapping, so the copy does not also keep
    /// the mapped pages resident; F16, BF16 and F64 are converted straight into it, with nothing cached.
    /// </summary>
    public virtual void CopyFloat32(string name, Span<float> destination) => GetFloat32(name).CopyTo(destination);

    /// <summary>The tensor's elements as int64 (I64 stored; smaller integer types widened).</summary>
    public abstract long[] GetInt64(string name);

    /// <summary>
    /// The float32 elements of a tensor whose shape must equal <paramref name="expectedShape"/>;
    /// a mismatch names the file, the tensor and both shapes.
    /// </summary>
    public ReadOnlySpan<float> GetFloat32(string name, params long[] expectedShape)
    {
        CheckShape(name, expectedShape);
        return GetFloat32(name);
    }

    /// <summary>A new array with the elements of a tensor whose shape must equal <paramref name="expectedShape"/>.</summary>
    public float[] ReadFloat32(string name, params long[] expectedShape)
    {
        CheckShape(name, expectedShape);
        var values = new float[Info(name).ElementCount];
        CopyFloat32(name, values);
        return values;
    }

    /// <summary>
    /// Throws unless the tensor exists with exactly the shape <paramref name="expectedShape"/>; the message names the
    /// file, the tensor and both shapes.
    /// </summary>
    public void CheckShape(string name, params long[] expectedShape)
    {
        if (!Contains(name))
            throw new InvalidDataException($"{SourcePath}: tensor '{UserText.Quote(name)}' is missing.");
        var info = Info(name);
        if (!info.Shape.SequenceEqual(expectedShape))
            throw new InvalidDataException(
                $"{SourcePath}: tensor '{UserText.Quote(name)}' has shape {info.ShapeText}, the config expects [{string.Join(", ", expectedShape)}].");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        IsDisposed = true;
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>True once <see cref="Dispose()"/> was called: towers reading tensors in place from it refuse to run then.</summary>
    public bool IsDisposed { get; private set; }

    /// <summary>Releases the mapped file.</summary>
    protected abstract void Dispose(bool disposing);
}
