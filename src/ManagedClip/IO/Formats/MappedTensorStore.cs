namespace ManagedClip.IO.Formats;

/// <summary>
/// A tensor store whose tensors live in one memory-mapped file, located by a validated <see cref="MappedTensorTable"/>:
/// what <see cref="SafeTensorsFile"/> and <see cref="TorchCheckpoint"/> share once their formats are parsed.
/// </summary>
internal abstract class MappedTensorStore : TensorStore, IRawTensorSource
{
    private readonly MappedTensorTable table;

    private protected MappedTensorStore(string path, MappedTensorTable table)
    {
        SourcePath = path;
        this.table = table;
    }

    /// <inheritdoc/>
    public override string SourcePath { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<string> Names => table.Names;

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

    /// <summary>The tensors this store holds converted float32 copies of (tests check that packed weights are not among them).</summary>
    internal IReadOnlyCollection<string> ConvertedTensorNames => table.ConvertedNames;

    ReadOnlySpan<byte> IRawTensorSource.RawBytes(string name) => table.RawBytes(name);

    /// <inheritdoc/>
    protected override void Dispose(bool disposing) => table.Dispose();
}
