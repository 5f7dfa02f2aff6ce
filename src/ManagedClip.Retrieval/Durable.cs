using System.Runtime.InteropServices;

namespace ManagedClip.Retrieval;

/// <summary>
/// Making writes survive a crash or power loss: file contents are flushed to disk before the manifest that names
/// them is renamed into place, and the folder itself is flushed so the rename is on disk too.
/// </summary>
internal static partial class Durable
{
    /// <summary>Writes a file through a temporary name in the same folder, flushed, then renamed over the target.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> content)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temporary = Path.Combine(folder, $".{Path.GetFileName(path)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
        FlushFolder(folder);
    }

    /// <summary>Flushes a folder's entries (new names, renames) to disk. Linux and macOS; a no-op elsewhere.</summary>
    public static void FlushFolder(string folder)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = open(folder, 0 /* O_RDONLY */);
        if (fd < 0) return; // best effort: the file contents themselves are already flushed
        try { fsync(fd); }
        finally { close(fd); }
    }

    public static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int close(int fd);
}
