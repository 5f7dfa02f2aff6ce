using System.Runtime.InteropServices;

namespace ManagedClip.Retrieval;

/// <summary>A file found under the indexed folder, with its state when it was listed.</summary>
/// <param name="RelativePath">'/'-separated, relative to the indexed folder: the row's key.</param>
/// <param name="FullPath">Where it is on this machine.</param>
/// <param name="Size">Bytes.</param>
/// <param name="ModifiedUtc">Last write time, UTC (100 ns resolution).</param>
/// <param name="Problem">Why it cannot be read at all (not a regular file, a broken link …), or null.</param>
public sealed record FoundFile(string RelativePath, string FullPath, long Size, DateTime ModifiedUtc, string? Problem);

/// <summary>What a walk found besides the files.</summary>
public sealed class WalkSummary
{
    /// <summary>Candidate files, sorted by relative path (ordinal).</summary>
    public List<FoundFile> Files { get; } = [];

    /// <summary>Symbolic links to folders, never followed (so no loop and no row twice).</summary>
    public int SymlinkedFoldersSkipped { get; set; }

    /// <summary>Folders reached twice through bind mounts or hard links (same device and inode), walked once.</summary>
    public int RepeatedFoldersSkipped { get; set; }

    /// <summary>Folders that could not be listed (permissions), with the reason.</summary>
    public List<(string Path, string Error)> UnreadableFolders { get; } = [];
}

/// <summary>
/// Lists the image files under a folder. Symbolic links to folders are never followed (counted instead); links
/// to files are taken as the file they point to. Files are taken by extension (the decoders' formats and
/// <c>.dcm</c>), and a file without an extension when it is DICOM by content (a Part 10 file or a bare data set; not a DICOMDIR). Anything
/// that is not a regular file (FIFO, socket, device) is never opened: with an image extension it becomes a row
/// with an error, otherwise it is ignored.
/// </summary>
public static partial class FileTree
{
    /// <summary>Extensions taken as images (case-insensitive).</summary>
    public static readonly IReadOnlySet<string> ImageExtensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".tga", ".pbm", ".pgm", ".ppm", ".dcm", ".dicom",
    };

    /// <summary>Walks <paramref name="root"/>; <paramref name="exclude"/> (the index being written, if inside) is skipped.</summary>
    public static WalkSummary Walk(string root, string? exclude, Func<string, bool> take, CancellationToken cancellationToken = default)
    {
        root = Path.GetFullPath(root);
        var info = Stat(root, followLinks: true);
        if (info.Kind != EntryKind.Directory)
            throw new DirectoryNotFoundException(info.Kind == EntryKind.Missing ? $"{root}: no such folder" : $"{root}: not a folder");
        string? excluded = exclude == null ? null : Path.TrimEndingDirectorySeparator(Path.GetFullPath(exclude));
        var summary = new WalkSummary();
        var seen = new HashSet<(ulong, ulong)>();
        if (info.Inode != 0) seen.Add((info.Device, info.Inode));
        var pending = new Stack<(string Full, string Relative)>();
        pending.Push((root, ""));
        while (pending.Count > 0)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (folder, relativeFolder) = pending.Pop();
            string[] entries;
            try
            {
                entries = Directory.GetFileSystemEntries(folder);
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                summary.UnreadableFolders.Add((relativeFolder.Length == 0 ? "." : relativeFolder, e.Message.ReplaceLineEndings(" ")));
                continue;
            }
            foreach (var full in entries)
            {
                string name = Path.GetFileName(full);
                string relative = relativeFolder.Length == 0 ? name : relativeFolder + "/" + name;
                var own = Stat(full, followLinks: false);
                var target = own.Kind == EntryKind.Symlink ? Stat(full, followLinks: true) : own;
                if (target.Kind == EntryKind.Directory)
                {
                    if (own.Kind == EntryKind.Symlink) { summary.SymlinkedFoldersSkipped++; continue; }
                    if (excluded != null && string.Equals(Path.TrimEndingDirectorySeparator(full), excluded, StringComparison.Ordinal)) continue;
                    if (target.Inode != 0 && !seen.Add((target.Device, target.Inode))) { summary.RepeatedFoldersSkipped++; continue; }
                    pending.Push((full, relative));
                    continue;
                }
                if (!take(relative)) continue;
                string extension = Path.GetExtension(name);
                bool byExtension = ImageExtensions.Contains(extension);
                switch (target.Kind)
                {
                    case EntryKind.Regular:
                        if (byExtension || (extension.Length == 0 && IsDicomByContent(full)))
                            summary.Files.Add(new FoundFile(relative, full, target.Size, target.ModifiedUtc, null));
                        break;
                    case EntryKind.Missing when own.Kind == EntryKind.Symlink:
                        if (byExtension) summary.Files.Add(new FoundFile(relative, full, 0, DateTime.UnixEpoch, $"{relative}: broken symbolic link"));
                        break;
                    case EntryKind.Missing:
                        break; // vanished while listing
                    default:
                        if (byExtension)
                            summary.Files.Add(new FoundFile(relative, full, 0, target.ModifiedUtc, $"{relative}: not a regular file ({Describe(target.Kind)}); not opened"));
                        break;
                }
            }
        }
        summary.Files.Sort((a, b) => string.CompareOrdinal(a.RelativePath, b.RelativePath));
        return summary;
    }

    // Only called for regular files, so opening cannot block. Part 10 files and bare data sets are recognised by the
    // DICOM reader's own probe; the media directory (DICOMDIR) is not an image.
    private static bool IsDicomByContent(string path) => Imaging.Dicom.DicomImageReader.IsDicomImageFile(path);

    private static string Describe(EntryKind kind) => kind switch
    {
        EntryKind.Fifo => "a FIFO",
        EntryKind.Socket => "a socket",
        EntryKind.CharacterDevice => "a character device",
        EntryKind.BlockDevice => "a block device",
        _ => "not a file",
    };

    internal enum EntryKind { Missing, Regular, Directory, Symlink, Fifo, Socket, CharacterDevice, BlockDevice, Other }

    internal readonly record struct EntryInfo(EntryKind Kind, long Size, DateTime ModifiedUtc, ulong Device, ulong Inode);

    /// <summary>lstat/stat without opening the file: its kind, size and modification time.</summary>
    internal static unsafe EntryInfo Stat(string path, bool followLinks)
    {
        if (OperatingSystem.IsLinux())
        {
            // struct statx is the same on every Linux architecture (unlike struct stat), so fixed offsets are safe.
            byte* buffer = stackalloc byte[256];
            const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
            const uint Mask = 0x1 /* TYPE */ | 0x2 /* MODE */ | 0x40 /* MTIME */ | 0x100 /* INO */ | 0x200 /* SIZE */;
            if (statx(AtFdCwd, path, followLinks ? 0 : AtSymlinkNoFollow, Mask, buffer) != 0)
                return new EntryInfo(EntryKind.Missing, 0, DateTime.UnixEpoch, 0, 0);
            ushort mode = *(ushort*)(buffer + 28);
            ulong inode = *(ulong*)(buffer + 32);
            long size = *(long*)(buffer + 40);
            long seconds = *(long*)(buffer + 112);
            uint nanoseconds = *(uint*)(buffer + 120);
            ulong device = ((ulong)*(uint*)(buffer + 136) << 32) | *(uint*)(buffer + 140);
            var kind = (mode & 0xF000) switch
            {
                0x8000 => EntryKind.Regular,
                0x4000 => EntryKind.Directory,
                0xA000 => EntryKind.Symlink,
                0x1000 => EntryKind.Fifo,
                0xC000 => EntryKind.Socket,
                0x2000 => EntryKind.CharacterDevice,
                0x6000 => EntryKind.BlockDevice,
                _ => EntryKind.Other,
            };
            // 100 ns ticks, as .NET's own file times: the resolution change detection compares at.
            var modified = DateTime.UnixEpoch.AddTicks(seconds * TimeSpan.TicksPerSecond + nanoseconds / 100);
            return new EntryInfo(kind, size, modified, device, inode);
        }
        // Elsewhere: .NET's view (no FIFO/device distinction; such files are rare outside Unix).
        FileSystemInfo entry = Directory.Exists(path) ? new DirectoryInfo(path) : new FileInfo(path);
        if (!entry.Exists && entry.LinkTarget == null) return new EntryInfo(EntryKind.Missing, 0, DateTime.UnixEpoch, 0, 0);
        if (!followLinks && entry.LinkTarget != null) return new EntryInfo(EntryKind.Symlink, 0, DateTime.UnixEpoch, 0, 0);
        if (followLinks && entry.LinkTarget != null)
        {
            var final = entry.ResolveLinkTarget(returnFinalTarget: true);
            if (final == null || !final.Exists) return new EntryInfo(EntryKind.Missing, 0, DateTime.UnixEpoch, 0, 0);
            entry = final;
        }
        return entry is DirectoryInfo
            ? new EntryInfo(EntryKind.Directory, 0, entry.LastWriteTimeUtc, 0, 0)
            : new EntryInfo(EntryKind.Regular, ((FileInfo)entry).Length, entry.LastWriteTimeUtc, 0, 0);
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int statx(int dirfd, string path, int flags, uint mask, byte* buffer);
}
