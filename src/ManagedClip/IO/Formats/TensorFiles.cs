namespace ManagedClip.IO.Formats;

/// <summary>Opens a weights file in whichever supported format it is, recognised by its first bytes.</summary>
internal static class TensorFiles
{
    /// <summary>
    /// Opens <paramref name="path"/> as a torch zip checkpoint (starts with <c>PK\x03\x04</c>) or a safetensors file
    /// (8-byte header length, then <c>{</c>); anything else is refused with a message saying what was found.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="InvalidDataException">Not a supported format, or a malformed file.</exception>
    public static TensorStore OpenWeights(string path)
    {
        Span<byte> head = stackalloc byte[9];
        int read;
        using (var stream = GuardedFile.OpenRead(path, "weights file"))
            read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        head = head[..read];

        if (read == 0) throw new InvalidDataException($"{path}: the weights file is empty (0 bytes).");
        if (head.StartsWith("PK\x03\x04"u8) || head[0] == 0x80) return TorchCheckpoint.Open(path); // 0x80: legacy torch pickle, refused there
        if (read == 9 && head[8] == (byte)'{') return SafeTensorsFile.Open(path);
        throw new InvalidDataException(
            $"{path}: not a weights file ManagedClip reads: neither a torch zip checkpoint (PK\\x03\\x04) nor safetensors " +
            $"(8-byte length then '{{'); it starts with {Convert.ToHexString(head)}.");
    }
}
