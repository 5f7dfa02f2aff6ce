namespace ManagedClip.IO;

/// <summary>
/// A memory-mapped, fully validated .safetensors file. Float32 tensors are zero-copy views of the mapping;
/// F16/BF16/F64 are converted to float32 once (thread-safe) and cached; integer types are read with
/// <see cref="TensorStore.GetInt64"/>. Validation rules: see the format notes on <c>SafeTensorsHeader</c>.
/// </summary>
public sealed class SafeTensorsFile : TensorStore, IRawTensorSource
{
    private readonly MappedTensorTable table;

    /// <inheritdoc/>
    public override string SourcePath { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<string> Names => table.Names;

    /// <summary>The header's <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafeTensorsFile(string path, MappedTensorTable table, Dictionary<string, string> metadata)
    {
        SourcePath = path;
        this.table = table;
        Metadata = metadata;
    }

    /// <summary>Maps and validates a safetensors file.</summary>
    /// <exception cref="InvalidDataException">The file breaks the format; the message names the file and the tensor.</exception>
    public static SafeTensorsFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            var (tensors, metadata) = SafeTensorsHeader.Read(file);
            return new SafeTensorsFile(path, new MappedTensorTable(file, tensors), metadata);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public override TensorInfo Info(string name) => table.Get(name).Info;

    /// <inheritdoc/>
    public override bool Contains(string name) => table.Contains(name);

    /// <inheritdoc/>
    public override ReadOnlySpan<float> GetFloat32(string name) => table.GetFloat32(name);

    /// <inheritdoc/>
    public override void CopyFloat32(string name, Span<float> destination) => table.CopyFloat32(name, destination);

    /// <inheritdoc/>
    public override long[] GetInt64(string name) => table.GetInt64(name);

    ReadOnlySpan<byte> IRawTensorSource.RawBytes(string name) => table.RawBytes(name);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing) => table.Dispose();
}
