using System.IO.MemoryMappedFiles;

namespace ManagedClip.IO.Formats;

/// <summary>
/// A whole file mapped read-only into memory. Every access is bounds-checked against the file length, so
/// offsets read from an untrusted header can never reach outside the mapping.
/// </summary>
internal sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile map;
    private readonly MemoryMappedViewAccessor view;
    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle readHandle; // for ReadAt: copies without mapping pages in
    private byte* start;

    /// <summary>Path the file was opened with (for error messages).</summary>
    public string Path { get; }

    /// <summary>File length in bytes, taken from the open handle (so a symlink reports its target's size).</summary>
    public long Length { get; }

    private MappedFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long length)
    {
        Path = path;
        this.map = map;
        this.view = view;
        Length = length;
        readHandle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        start = pointer + view.PointerOffset;
    }

    /// <summary>
    /// Maps <paramref name="path"/>, a regular file (<see cref="GuardedFile"/>); an empty file is an
    /// <see cref="InvalidDataException"/> (it cannot be mapped). <paramref name="what"/> names the file's role in errors.
    /// </summary>
    public static MappedFile Open(string path, string what = "tensor file")
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Tensor files are little-endian; this machine is big-endian.");
        using var stream = GuardedFile.OpenRead(path, what);
        long length = stream.Length;
        if (length == 0) throw new InvalidDataException($"{UserText.Quote(path)}: the {what} is empty (0 bytes).");
        var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read,
            HandleInheritability.None, leaveOpen: false);
        try
        {
            var view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            return new MappedFile(path, map, view, length);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    /// <summary>True if [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="count"/>) lies inside the file.</summary>
    public bool Contains(long offset, long count) => offset >= 0 && count >= 0 && offset <= Length && count <= Length - offset;

    /// <summary>Pointer to byte <paramref name="offset"/> of a range that must lie inside the file.</summary>
    public byte* Pointer(long offset, long count)
    {
        ObjectDisposedException.ThrowIf(start == null, this);
        if (!Contains(offset, count))
            throw new InvalidDataException($"{Path}: byte range [{offset}, +{count}) lies outside the {Length}-byte file.");
        return start + offset;
    }

    /// <summary>A view of <paramref name="count"/> bytes at <paramref name="offset"/> (at most 2 GiB).</summary>
    public ReadOnlySpan<byte> Bytes(long offset, long count)
    {
        if (count > int.MaxValue)
            throw new InvalidDataException($"{Path}: byte range of {count} bytes at {offset} is larger than 2 GiB.");
        return new ReadOnlySpan<byte>(Pointer(offset, count), (int)count);
    }

    /// <summary>
    /// Copies a range into <paramref name="destination"/> with ordinary reads. Unlike touching the mapping, this leaves
    /// no file pages resident in this process, so copying weights into packed layouts does not hold them twice.
    /// </summary>
    public void ReadAt(long offset, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(start == null, this);
        if (!Contains(offset, destination.Length))
            throw new InvalidDataException($"{Path}: byte range [{offset}, +{destination.Length}) lies outside the {Length}-byte file.");
        while (!destination.IsEmpty)
        {
            int read = RandomAccess.Read(readHandle, destination, offset);
            if (read == 0) throw new InvalidDataException($"{Path}: the file ended at byte {offset} (was it truncated while open?).");
            destination = destination[read..];
            offset += read;
        }
    }

    /// <summary>Little-endian integers at an offset.</summary>
    public ushort UInt16(long offset) => System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(Bytes(offset, 2));

    /// <inheritdoc cref="UInt16"/>
    public uint UInt32(long offset) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(Bytes(offset, 4));

    /// <inheritdoc cref="UInt16"/>
    public ulong UInt64(long offset) => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(Bytes(offset, 8));

    public void Dispose()
    {
        if (start == null) return;
        start = null;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
        readHandle.Dispose();
    }
}
