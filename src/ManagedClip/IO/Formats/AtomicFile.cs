namespace ManagedClip.IO.Formats;

/// <summary>
/// Writes a file so that readers never see it half-written: the content goes to a temporary file in the same
/// folder, is flushed to disk, then renamed over the target. An existing target is kept unless overwriting is asked for.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, bool overwrite, Action<FileStream> writeContent)
    {
        var fullPath = Path.GetFullPath(path);
        if (!overwrite && (File.Exists(fullPath) || Directory.Exists(fullPath)))
            throw new IOException($"{path} already exists; refusing to overwrite it (use --force to replace it).");
        var folder = Path.GetDirectoryName(fullPath)!;
        Directory.CreateDirectory(folder);
        var temporary = Path.Combine(folder, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                writeContent(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, fullPath, overwrite);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>Copies <paramref name="source"/> to <paramref name="destination"/> through a temporary file.</summary>
    public static void Copy(string source, string destination, bool overwrite)
    {
        using var input = GuardedFile.OpenRead(source, "file to copy");
        Write(destination, overwrite, output => input.CopyTo(output));
    }
}
