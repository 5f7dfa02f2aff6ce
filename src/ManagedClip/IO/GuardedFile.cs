using System.Runtime.InteropServices;
using System.Text;

namespace ManagedClip.IO;

/// <summary>
/// The one way the library opens a file it was given: images, configs, vocabularies, weights, index files and
/// requests all come through here. Only regular files are opened. A directory, named pipe, device or socket is
/// refused from its metadata, before anything is opened (opening a named pipe for reading would wait for a writer
/// forever, and a device such as <c>/dev/zero</c> never ends). Whole-file reads stop at a byte cap counted while
/// reading, so a file whose reported length is wrong still cannot make us read without bound.
/// </summary>
/// <remarks>
/// .NET reports no file type beyond "directory", so on Linux the type comes from one <c>statx(2)</c> call into the C
/// library (always present; nothing native ships with the library). Where that call is not available, a file whose
/// target reports 0 bytes is refused unopened: pipes, devices and sockets all report 0, and an empty regular file
/// is no valid input either.
/// </remarks>
internal static class GuardedFile
{
    /// <summary>
    /// Checks that <paramref name="path"/> names an existing, non-empty regular file (following symbolic links) and
    /// returns its length. Nothing is opened.
    /// </summary>
    /// <param name="path">The path as the user gave it (named in errors).</param>
    /// <param name="what">What the file should be, for messages: "image", "config file", "weights file"…</param>
    /// <exception cref="FileNotFoundException">Nothing at <paramref name="path"/> (or a dangling link).</exception>
    /// <exception cref="InvalidDataException">A directory, pipe, device, socket, or an empty file.</exception>
    public static long Check(string path, string what)
    {
        if (string.IsNullOrEmpty(path)) throw new FileNotFoundException($"no {what} path given");
        string shown = UserText.Quote(path);
        if (Directory.Exists(path)) throw new InvalidDataException($"{shown}: is a folder, not {Article(what)} {what}");
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{shown}: no such {what}", path);
        if (info.LinkTarget is not null)
        {
            // The length, and the type, that matter are the target's, not the link's own.
            var target = info.ResolveLinkTarget(returnFinalTarget: true);
            if (target is null || !target.Exists)
                throw new FileNotFoundException($"{shown}: is a symbolic link to a missing file ({UserText.Quote(info.LinkTarget)})", path);
            if (target is DirectoryInfo) throw new InvalidDataException($"{shown}: is a link to a folder, not {Article(what)} {what}");
            info = (FileInfo)target;
        }
        var kind = UnixFileType.Of(info.FullName);
        if (kind is not (null or UnixFileKind.Regular))
            throw new InvalidDataException($"{shown}: is {UnixFileType.Describe(kind.Value)}, not a regular file; give the {what} as a file");
        long length = info.Length;
        if (length == 0)
        {
            throw new InvalidDataException(kind is null
                ? $"{shown}: is empty (0 bytes) or not a regular file (a pipe or device); give the {what} as a file"
                : $"{shown}: the {what} is empty (0 bytes)");
        }
        return length;
    }

    /// <summary>Opens a checked regular file for reading (for memory mapping or streaming).</summary>
    public static FileStream OpenRead(string path, string what, FileOptions options = FileOptions.None)
    {
        Check(path, what);
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, options);
    }

    /// <summary>
    /// The whole content of a checked regular file of at most <paramref name="maxBytes"/> bytes. The cap is
    /// enforced on the bytes actually read, not on the reported length.
    /// </summary>
    /// <exception cref="InvalidDataException">Not a regular file, empty, or larger than the cap.</exception>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        long reported = Check(path, what);
        if (reported > maxBytes) throw TooLarge(path, what, maxBytes, $"is {reported:N0} bytes");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        return ReadCapped(stream, maxBytes, path, what);
    }

    /// <summary>The whole content of a checked file as strict UTF-8 text (a byte-order mark, if any, is kept as U+FEFF).</summary>
    /// <exception cref="InvalidDataException">Also when the bytes are not valid UTF-8.</exception>
    public static string ReadAllText(string path, long maxBytes, string what) =>
        DecodeUtf8(ReadAllBytes(path, maxBytes, what), path, what);

    /// <summary>
    /// Everything a stream gives (e.g. standard input), up to <paramref name="maxBytes"/>; more is an error that
    /// names <paramref name="name"/>.
    /// </summary>
    public static byte[] ReadCapped(Stream stream, long maxBytes, string name, string what)
    {
        var buffer = new MemoryStream();
        var chunk = new byte[81920];
        while (true)
        {
            int read = stream.Read(chunk, 0, (int)Math.Min(chunk.Length, maxBytes + 1 - buffer.Length));
            if (read == 0) break;
            buffer.Write(chunk, 0, read);
            if (buffer.Length > maxBytes) throw TooLarge(name, what, maxBytes, "goes on past that");
        }
        return buffer.ToArray();
    }

    /// <summary>Strict UTF-8 decoding whose error names the file and the byte offset.</summary>
    public static string DecodeUtf8(byte[] bytes, string name, string what)
    {
        try
        {
            return new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            string at = e.Index >= 0 ? $" at byte {e.Index:N0}" : "";
            throw new InvalidDataException($"{UserText.Quote(name)}: the {what} is not valid UTF-8 text (invalid bytes{at})");
        }
    }

    private static string Article(string noun) => "aeiou".Contains(noun[0]) ? "an" : "a";

    private static InvalidDataException TooLarge(string path, string what, long maxBytes, string actual) =>
        new($"{UserText.Quote(path)}: {actual}, more than the {maxBytes:N0}-byte limit for {Article(what)} {what}");
}

/// <summary>What <c>statx(2)</c> says a path is (after following links).</summary>
internal enum UnixFileKind { Regular, Directory, Fifo, CharacterDevice, BlockDevice, Socket, Other }

/// <summary>The file type of a path on Linux, from <c>statx(2)</c>; null elsewhere or when the call fails.</summary>
internal static unsafe class UnixFileType
{
    private const int CurrentDirectory = -100; // AT_FDCWD
    private const uint TypeMask = 0x0001;      // STATX_TYPE
    private const int ModeOffset = 28;         // struct statx: stx_mode (u16) after mask, blksize, attributes, nlink, uid, gid
    private const int BufferSize = 256;        // sizeof(struct statx)

    private static bool unavailable = !OperatingSystem.IsLinux();

    public static UnixFileKind? Of(string path)
    {
        if (unavailable) return null;
        var name = Encoding.UTF8.GetBytes(path + "\0");
        byte* buffer = stackalloc byte[BufferSize];
        try
        {
            fixed (byte* pathBytes = name)
            {
                if (Statx(CurrentDirectory, pathBytes, 0, TypeMask, buffer) != 0) return null;
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            unavailable = true; // an old C library without statx: fall back to the length test
            return null;
        }
        int mode = *(ushort*)(buffer + ModeOffset);
        return (mode & 0xF000) switch
        {
            0x8000 => UnixFileKind.Regular,
            0x4000 => UnixFileKind.Directory,
            0x1000 => UnixFileKind.Fifo,
            0x2000 => UnixFileKind.CharacterDevice,
            0x6000 => UnixFileKind.BlockDevice,
            0xC000 => UnixFileKind.Socket,
            _ => UnixFileKind.Other,
        };
    }

    /// <summary>
    /// Size, modification time (ns since 1970), inode and device of the file <paramref name="path"/> names (after
    /// following links), from the same <c>statx(2)</c> call; null where that call is unavailable or fails.
    /// </summary>
    public static (long Size, long ModifiedNanoseconds, ulong Inode, ulong Device)? Identity(string path)
    {
        if (unavailable) return null;
        var name = Encoding.UTF8.GetBytes(path + "\0");
        byte* buffer = stackalloc byte[BufferSize];
        try
        {
            fixed (byte* pathBytes = name)
            {
                if (Statx(CurrentDirectory, pathBytes, 0, BasicStats, buffer) != 0) return null;
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            unavailable = true;
            return null;
        }
        if ((*(uint*)buffer & BasicStats) != BasicStats) return null; // the file system did not fill every field
        long seconds = *(long*)(buffer + ModifiedOffset);
        uint nanoseconds = *(uint*)(buffer + ModifiedOffset + 8);
        ulong device = ((ulong)*(uint*)(buffer + DeviceOffset) << 32) | *(uint*)(buffer + DeviceOffset + 4); // major, minor
        return (*(long*)(buffer + SizeOffset), seconds * 1_000_000_000 + nanoseconds, *(ulong*)(buffer + InodeOffset), device);
    }

    // struct statx, after stx_mode: stx_ino at 32, stx_size at 40, the four timestamps {s64 sec, u32 nsec, s32} from 64
    // (atime, btime, ctime, mtime), then rdev and dev as major/minor pairs.
    private const uint BasicStats = 0x07FF; // STATX_BASIC_STATS
    private const int InodeOffset = 32;
    private const int SizeOffset = 40;
    private const int ModifiedOffset = 112;
    private const int DeviceOffset = 136;

    public static string Describe(UnixFileKind kind) => kind switch
    {
        UnixFileKind.Directory => "a folder",
        UnixFileKind.Fifo => "a named pipe (FIFO)",
        UnixFileKind.CharacterDevice => "a character device",
        UnixFileKind.BlockDevice => "a block device",
        UnixFileKind.Socket => "a socket",
        _ => "a special file",
    };

    [DllImport("libc", EntryPoint = "statx")]
    private static extern int Statx(int directory, byte* path, int flags, uint mask, byte* buffer);
}
