namespace ManagedClip.IO.Formats;

/// <summary>
/// A memory-mapped, fully validated .safetensors file. Float32 tensors are zero-copy views of the mapping;
/// F16/BF16/F64 are converted to float32 once (thread-safe) and cached; integer types are read with
/// <see cref="TensorStore.GetInt64"/>. Validation rules: see the format notes on <c>SafeTensorsHeader</c>.
/// </summary>
internal sealed class SafeTensorsFile : MappedTensorStore
{
    /// <summary>The header's <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private SafeTensorsFile(string path, MappedTensorTable table, Dictionary<string, string> metadata)
        : base(path, table) => Metadata = metadata;

    /// <summary>Maps and validates a safetensors file.</summary>
    /// <exception cref="InvalidDataException">The file breaks the format; the message names the file and the tensor.</exception>
    public static SafeTensorsFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            var (tensors, metadata) = SafeTensorsHeader.Read(file);
            // safetensors' load_file lists names sorted, so the smallest name is the one open_clip checks.
            var firstKey = tensors.Select(t => t.Info.Name).Order(StringComparer.Ordinal).FirstOrDefault();
            tensors = StateDictKeys.WithoutDataParallelPrefix(tensors, firstKey, path);
            return new SafeTensorsFile(path, new MappedTensorTable(file, tensors), metadata);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }
}
