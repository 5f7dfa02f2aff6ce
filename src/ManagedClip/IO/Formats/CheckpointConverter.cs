namespace ManagedClip.IO.Formats;

/// <summary>Converts a weights file (torch zip checkpoint or safetensors) to safetensors, tensor for tensor.</summary>
internal static class CheckpointConverter
{
    /// <summary>
    /// Writes every tensor of <paramref name="inputPath"/> (including buffers such as <c>position_ids</c>) unchanged —
    /// same names, dtypes, shapes and bytes — to the safetensors file <paramref name="outputPath"/>, via a temporary
    /// file and a rename. Each tensor is streamed from the input's memory map, so memory use stays small.
    /// </summary>
    /// <param name="inputPath">A torch zip checkpoint (e.g. <c>open_clip_pytorch_model.bin</c>) or a safetensors file.</param>
    /// <param name="outputPath">The .safetensors file to create.</param>
    /// <param name="force">Replace <paramref name="outputPath"/> if it exists; otherwise that is an error.</param>
    /// <returns>The number of tensors written.</returns>
    /// <exception cref="IOException"><paramref name="outputPath"/> exists and <paramref name="force"/> is false.</exception>
    /// <exception cref="InvalidDataException">The input is malformed.</exception>
    public static int Convert(string inputPath, string outputPath, bool force = false)
    {
        if (Path.GetFullPath(inputPath) == Path.GetFullPath(outputPath))
            throw new ArgumentException($"{outputPath}: the output must be a different file from the input.");
        if (!force && File.Exists(outputPath))
            throw new IOException($"{outputPath} already exists; refusing to overwrite it (use --force to replace it).");
        using var store = TensorFiles.OpenWeights(inputPath);
        var raw = (IRawTensorSource)store; // both readers expose their stored bytes
        var entries = store.Names.Select(name => new SafeTensorsWriter.Entry(store.Info(name), s => s.Write(raw.RawBytes(name))));
        SafeTensorsWriter.Write(outputPath, entries, new Dictionary<string, string> { ["format"] = "pt" }, force);
        return store.Names.Count;
    }
}
