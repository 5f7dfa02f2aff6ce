using System.Text;

namespace ManagedClip.IO.Formats;

/// <summary>One member of a zip archive.</summary>
/// <param name="Name">Path inside the archive, e.g. <c>archive/data/0</c>.</param>
/// <param name="Method">Compression method (0 = stored, the only one torch.save writes).</param>
/// <param name="DataOffset">Absolute file offset of the member's (compressed) bytes.</param>
/// <param name="CompressedSize">Bytes stored in the file.</param>
/// <param name="Size">Bytes after decompression (equal to <paramref name="CompressedSize"/> when stored).</param>
internal sealed record ZipEntry(string Name, int Method, long DataOffset, long CompressedSize, long Size)
{
    public bool IsStored => Method == 0;
}

/// <summary>
/// A minimal reader of a zip file's central directory (PKWARE APPNOTE 6.3: end of central directory record,
/// zip64 end record and locator, central headers with zip64 extra fields, local headers to find where data
/// starts). Every offset and size is checked against the file before it is used; nothing is decompressed.
/// </summary>
internal static class ZipDirectory
{
    private const uint EndSignature = 0x06054b50, Zip64EndSignature = 0x06064b50, Zip64LocatorSignature = 0x07064b50;
    private const uint CentralSignature = 0x02014b50, LocalSignature = 0x04034b50;
    private const int EndSize = 22, Zip64LocatorSize = 20, Zip64EndSize = 56, CentralSize = 46, LocalSize = 30;

    /// <summary>More members than any checkpoint has (the full model has about 360); bounds memory on hostile input.</summary>
    public const int MaxEntries = 1_000_000;

    /// <summary>The archive's members in central-directory order.</summary>
    public static List<ZipEntry> Read(MappedFile file)
    {
        var path = file.Path;
        InvalidDataException Error(string what) => new($"{path}: broken zip archive: {what}.");

        long end = FindEndRecord(file) ?? throw Error("no end-of-central-directory record (truncated or not a zip file)");
        if (file.UInt16(end + 4) != 0 || file.UInt16(end + 6) != 0) throw Error("multi-disk archives are not supported");
        long entryCount = file.UInt16(end + 10);
        long directorySize = file.UInt32(end + 12);
        long directoryOffset = file.UInt32(end + 16);
        long directoryLimit = end; // the central directory must lie before the record that describes it

        long locator = end - Zip64LocatorSize;
        if (locator >= 0 && file.UInt32(locator) == Zip64LocatorSignature)
        {
            ulong zip64End = file.UInt64(locator + 8);
            if (file.UInt32(locator + 4) != 0 || file.UInt32(locator + 16) > 1) throw Error("multi-disk zip64 archives are not supported");
            if (locator < Zip64EndSize || zip64End > (ulong)(locator - Zip64EndSize)) throw Error($"zip64 end record offset {zip64End} is outside the file");
            long record = (long)zip64End;
            if (file.UInt32(record) != Zip64EndSignature) throw Error($"no zip64 end record at offset {record}");
            ulong total = file.UInt64(record + 32), size = file.UInt64(record + 40), offset = file.UInt64(record + 48);
            // Fields of the classic record that are not saturated must agree with the zip64 ones.
            if ((entryCount != 0xFFFF && (ulong)entryCount != total) || (directorySize != 0xFFFFFFFF && (ulong)directorySize != size)
                || (directoryOffset != 0xFFFFFFFF && (ulong)directoryOffset != offset))
                throw Error("the zip64 end record disagrees with the end-of-central-directory record");
            if (total > MaxEntries || size > (ulong)file.Length || offset > (ulong)file.Length)
                throw Error("zip64 end record sizes are impossible for the file");
            (entryCount, directorySize, directoryOffset, directoryLimit) = ((long)total, (long)size, (long)offset, record);
        }
        else if (entryCount == 0xFFFF || directorySize == 0xFFFFFFFF || directoryOffset == 0xFFFFFFFF)
            throw Error("saturated end record without a zip64 locator");

        if (directoryOffset + directorySize > directoryLimit)
            throw Error($"central directory [{directoryOffset}, +{directorySize}) overlaps its end record at {directoryLimit}");
        if (entryCount > MaxEntries || entryCount * CentralSize > directorySize)
            throw Error($"{entryCount} entries cannot fit a {directorySize}-byte central directory");

        var entries = new List<ZipEntry>((int)entryCount);
        var names = new HashSet<string>(StringComparer.Ordinal);
        long position = directoryOffset, directoryEnd = directoryOffset + directorySize;
        for (long i = 0; i < entryCount; i++)
        {
            var entry = ReadCentralHeader(file, ref position, directoryEnd, directoryOffset, Error);
            if (!names.Add(entry.Name)) throw Error($"member '{entry.Name}' appears twice");
            entries.Add(entry);
        }
        if (position != directoryEnd) throw Error($"{directoryEnd - position} unexplained bytes at the end of the central directory");
        return entries;
    }

    /// <summary>The end record is 22 bytes plus a comment of up to 65535 bytes that must reach exactly to the end of the file.</summary>
    private static long? FindEndRecord(MappedFile file)
    {
        long lowest = Math.Max(0, file.Length - EndSize - ushort.MaxValue);
        for (long at = file.Length - EndSize; at >= lowest; at--)
            if (file.UInt32(at) == EndSignature && at + EndSize + file.UInt16(at + 20) == file.Length)
                return at;
        return null;
    }

    private static ZipEntry ReadCentralHeader(MappedFile file, ref long position, long directoryEnd, long dataLimit,
        Func<string, Exception> error)
    {
        if (position + CentralSize > directoryEnd) throw error("central directory entry runs past the directory");
        if (file.UInt32(position) != CentralSignature) throw error($"no central directory entry at offset {position}");
        int flags = file.UInt16(position + 8);
        int method = file.UInt16(position + 10);
        long compressed = file.UInt32(position + 20), size = file.UInt32(position + 24);
        int nameLength = file.UInt16(position + 28), extraLength = file.UInt16(position + 30), commentLength = file.UInt16(position + 32);
        int disk = file.UInt16(position + 34);
        long localOffset = file.UInt32(position + 42);
        long next = position + CentralSize + nameLength + extraLength + commentLength;
        if (next > directoryEnd) throw error("central directory entry runs past the directory");

        var nameBytes = file.Bytes(position + CentralSize, nameLength);
        string name;
        try
        {
            name = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(nameBytes);
        }
        catch (DecoderFallbackException)
        {
            throw error($"member name at offset {position} is not valid UTF-8");
        }
        if ((flags & 1) != 0) throw error($"member '{UserText.Quote(name)}' is encrypted");

        // Zip64 extended information (header id 1) replaces the saturated 32-bit fields, in this order.
        long extra = position + CentralSize + nameLength, extraEnd = extra + extraLength;
        while (extra + 4 <= extraEnd)
        {
            int id = file.UInt16(extra), length = file.UInt16(extra + 2);
            long fieldEnd = extra + 4 + length, cursor = extra + 4;
            if (fieldEnd > extraEnd) throw error($"member '{UserText.Quote(name)}' has a truncated extra field");
            if (id == 1)
            {
                long Next(string field)
                {
                    if (cursor + 8 > fieldEnd) throw error($"member '{UserText.Quote(name)}' zip64 field lacks the {field}");
                    ulong value = file.UInt64(cursor);
                    cursor += 8;
                    if (value > (ulong)file.Length) throw error($"member '{UserText.Quote(name)}' zip64 {field} {value} is larger than the file");
                    return (long)value;
                }
                if (size == 0xFFFFFFFF) size = Next("size");
                if (compressed == 0xFFFFFFFF) compressed = Next("compressed size");
                if (localOffset == 0xFFFFFFFF) localOffset = Next("local header offset");
            }
            extra = fieldEnd;
        }
        if (disk != 0 && disk != 0xFFFF) throw error($"member '{UserText.Quote(name)}' is on another disk");
        if (method == 0 && compressed != size) throw error($"stored member '{UserText.Quote(name)}' has compressed size {compressed} but size {size}");

        long dataOffset = LocalDataOffset(file, localOffset, nameBytes, name, error);
        if (dataOffset + compressed > dataLimit)
            throw error($"member '{UserText.Quote(name)}' data [{dataOffset}, +{compressed}) runs into the central directory or past the file end");
        position = next;
        return new ZipEntry(name, method, dataOffset, compressed, size);
    }

    /// <summary>The local header repeats the name and may carry its own extra field (torch pads with one to align data to 64 bytes).</summary>
    private static long LocalDataOffset(MappedFile file, long localOffset, ReadOnlySpan<byte> centralName, string name,
        Func<string, Exception> error)
    {
        if (!file.Contains(localOffset, LocalSize)) throw error($"member '{UserText.Quote(name)}' local header offset {localOffset} is outside the file");
        if (file.UInt32(localOffset) != LocalSignature) throw error($"member '{UserText.Quote(name)}' has no local header at offset {localOffset}");
        int nameLength = file.UInt16(localOffset + 26), extraLength = file.UInt16(localOffset + 28);
        long dataOffset = localOffset + LocalSize + nameLength + extraLength;
        if (!file.Contains(localOffset + LocalSize, nameLength + extraLength))
            throw error($"member '{UserText.Quote(name)}' local header runs past the file end");
        if (!file.Bytes(localOffset + LocalSize, nameLength).SequenceEqual(centralName))
            throw error($"member '{UserText.Quote(name)}' local header names a different file");
        return dataOffset;
    }
}
