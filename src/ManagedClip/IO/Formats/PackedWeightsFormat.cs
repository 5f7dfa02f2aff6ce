using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using ManagedClip.Kernels;

namespace ManagedClip.IO.Formats;

/// <summary>How the values of one matrix in a packed-weights file are stored (the codes written in its record).</summary>
internal enum PackedElementType : uint
{
    /// <summary>IEEE float32, the panels exactly as <see cref="WeightMatrix.Packed"/> makes them in memory.</summary>
    Float32 = 1,
    /// <summary>bfloat16 panels (the bf16 mode).</summary>
    BFloat16 = 2,
    /// <summary>int8 panels with their per-channel arrays (the int8 mode).</summary>
    Int8 = 3,
}

/// <summary>
/// One array of a matrix in a packed-weights file (<see cref="WeightMatrix.ArrayShapes"/>: "panels", "scales", …).
/// </summary>
/// <param name="Name">The array's name, ASCII, 1–32 bytes.</param>
/// <param name="Type">Its element type.</param>
/// <param name="Count">Its element count.</param>
/// <param name="Offset">Byte offset in the file, a multiple of 4096.</param>
/// <param name="ByteLength">Count × the element's size.</param>
/// <param name="Checksum">SHA-256 of its bytes.</param>
internal sealed record PackedSection(string Name, WeightArrayType Type, long Count, long Offset, long ByteLength, byte[] Checksum);

/// <summary>One matrix in the table of a packed-weights file: its shape, element type and arrays.</summary>
/// <param name="Name">The parts' state-dict names joined by " + " (see <see cref="Model.PackedRequest"/>).</param>
/// <param name="ElementType">How its values are stored.</param>
/// <param name="Rows">N, output features.</param>
/// <param name="Columns">K, input features.</param>
/// <param name="Sections">Its arrays, in file order.</param>
internal sealed record PackedMatrixEntry(string Name, PackedElementType ElementType, int Rows, int Columns, IReadOnlyList<PackedSection> Sections)
{
    /// <summary>The kernels' element type for a file's code; null for a code this version does not know.</summary>
    public static PanelElement? ToPanelElement(PackedElementType type) => type switch
    {
        PackedElementType.Float32 => PanelElement.Float32,
        PackedElementType.BFloat16 => PanelElement.BFloat16,
        PackedElementType.Int8 => PanelElement.Int8,
        _ => null,
    };

    /// <summary>The file's code for a kernels' element type.</summary>
    public static PackedElementType FromPanelElement(PanelElement element) => element switch
    {
        PanelElement.BFloat16 => PackedElementType.BFloat16,
        PanelElement.Int8 => PackedElementType.Int8,
        _ => PackedElementType.Float32,
    };
}

/// <summary>
/// The weights file a packed-weights file was built from, as it can be checked on every load in about a millisecond:
/// size, modification time, inode and device (one <c>statx</c>), and a SHA-256 of its first MiB and last 64 KiB, the
/// regions that hold a safetensors header or a torch zip's pickle and central directory. Hashing all 784 MB would
/// take half a second; this catches a replaced, rewritten, copied or edited file, while the full content hash
/// recorded at build (<see cref="PackedWeightsHeader.SourceContentHash"/>) says which weights the panels came from.
/// </summary>
internal sealed record WeightsIdentity(long Size, long ModifiedNanoseconds, ulong Inode, ulong Device, byte[] RegionHash)
{
    public const int HeadBytes = 1 << 20;
    public const int TailBytes = 64 << 10;

    /// <summary>The identity of the weights file at <paramref name="path"/> now.</summary>
    public static WeightsIdentity Of(string path)
    {
        long size, modified;
        ulong inode = 0, device = 0;
        if (UnixFileType.Identity(path) is { } stat)
            (size, modified, inode, device) = stat;
        else
        {
            // Without statx (not Linux): .NET's length and 100-ns write time; no inode.
            var info = new FileInfo(path);
            (size, modified) = (info.Length, (info.LastWriteTimeUtc - DateTime.UnixEpoch).Ticks * 100);
        }
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        int head = (int)Math.Min(HeadBytes, size), tail = (int)Math.Min(TailBytes, size);
        var region = new byte[head + tail];
        ReadExactly(handle, region.AsSpan(0, head), 0, path);
        ReadExactly(handle, region.AsSpan(head), size - tail, path);
        return new WeightsIdentity(size, modified, inode, device, SHA256.HashData(region));
    }

    /// <summary>Why the weights file differs from the one <paramref name="recorded"/> describes, or null if it does not.</summary>
    public string? DifferenceFrom(WeightsIdentity recorded) =>
        Size != recorded.Size ? $"the weights file is now {Size:N0} bytes, it was {recorded.Size:N0}" :
        ModifiedNanoseconds != recorded.ModifiedNanoseconds ? "the weights file was modified since" :
        Inode != recorded.Inode || Device != recorded.Device ? "the weights file was replaced since" :
        !RegionHash.AsSpan().SequenceEqual(recorded.RegionHash) ? "the weights file's header region changed" :
        null;

    private static void ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> destination, long offset, string path)
    {
        while (!destination.IsEmpty)
        {
            int read = RandomAccess.Read(handle, destination, offset);
            if (read == 0) throw new InvalidDataException($"{UserText.Quote(path)}: the weights file ended at byte {offset:N0} while it was read");
            destination = destination[read..];
            offset += read;
        }
    }
}

/// <summary>A packed-weights file that cannot be used: not one, damaged, stale or made for other kernels. It is rebuilt.</summary>
internal sealed class PackedWeightsRejectedException(string message) : Exception(message);

/// <summary>
/// The metadata at the start of a packed-weights file (docs/PACKED-WEIGHTS.md): a fixed header, then one record per
/// matrix, each listing the matrix's arrays (sections). All integers little-endian.
/// <code>
/// offset  bytes  field
///      0      8  magic "MCPANELS"
///      8      4  file layout version (2)
///     12      4  metadata bytes M (header + table; the first section starts at M rounded up to 4096)
///     16      4  panel width (32 output features per float32/bf16 panel)
///     20      4  vector width in bits of the kernel path that packed it (informational: the layout does not depend on it)
///     24      4  matrix count
///     28      4  low-precision packing version (LowPrecisionPacking.LayoutVersion when it was built)
///     32      8  file length in bytes
///     40      8  weights file: size
///     48      8  weights file: modification time, ns since 1970
///     56      8  weights file: inode (0 when unknown)
///     64      8  weights file: device (0 when unknown)
///     72     32  weights file: SHA-256 of its first MiB and last 64 KiB
///    104     32  weights file: SHA-256 of its whole content (at build time)
///    136     32  SHA-256 of the metadata bytes [0, M) with this field zeroed
///    168      4  precision: the element type of the reduced layers (1 float32, 2 bfloat16, 3 int8)
///    172      4  reserved, 0
///    176         the table, one record per matrix:
///                  u16 name length L (1..1024), L bytes UTF-8 name, u32 element type, u32 N, u32 K,
///                  u32 section count S (1..16), then S sections:
///                    u8 name length l (1..32), l bytes ASCII name, u32 array type, u32 reserved,
///                    u64 element count, u64 offset, u64 byte length, 32 bytes SHA-256 of the section's bytes
/// </code>
/// Sections start on 4096-byte boundaries, in table order, each after the previous one ends; padding is zero.
/// </summary>
internal sealed class PackedWeightsHeader
{
    public static ReadOnlySpan<byte> Magic => "MCPANELS"u8;
    public const uint LayoutVersion = 2;
    public const int FixedBytes = 176;
    public const int Alignment = 4096;            // sections start on page boundaries: mappable, and 64-byte aligned for the kernels
    public const int MaxMetadataBytes = 16 << 20;  // far above the ~40 KB of BiomedCLIP's 74 int8 matrices; bounds what a hostile header can make us read
    public const int MaxNameBytes = 1024;
    public const int MaxSections = 16;
    public const int MaxSectionNameBytes = 32;
    private const int RecordFixedBytes = 2 + 4 * 4;
    private const int SectionFixedBytes = 1 + 4 * 2 + 8 * 3 + 32;
    private const int ChecksumOffset = 136;

    public required uint PanelWidth { get; init; }
    public required uint VectorBits { get; init; }
    public required uint PackingVersion { get; init; }
    public required PackedElementType Precision { get; init; }
    public required long FileLength { get; init; }
    public required WeightsIdentity Source { get; init; }
    public required byte[] SourceContentHash { get; init; }
    public required IReadOnlyList<PackedMatrixEntry> Matrices { get; init; }

    /// <summary>Bytes of header and table for <paramref name="matrices"/>: names, and the names of each one's arrays.</summary>
    public static int MetadataLength(IEnumerable<(string Name, IEnumerable<string> Sections)> matrices) =>
        checked(FixedBytes + matrices.Sum(m => RecordFixedBytes + Encoding.UTF8.GetByteCount(m.Name)
            + m.Sections.Sum(section => SectionFixedBytes + Encoding.ASCII.GetByteCount(section))));

    /// <summary><paramref name="offset"/> rounded up to the next multiple of 4096.</summary>
    public static long Align(long offset) => (offset + Alignment - 1) / Alignment * Alignment;

    /// <summary>The metadata bytes, checksum included.</summary>
    public byte[] Serialize()
    {
        var bytes = new byte[MetadataLength(Matrices.Select(m => (m.Name, m.Sections.Select(s => s.Name))))];
        var span = bytes.AsSpan();
        Magic.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], LayoutVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], (uint)bytes.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(span[16..], PanelWidth);
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], VectorBits);
        BinaryPrimitives.WriteUInt32LittleEndian(span[24..], (uint)Matrices.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(span[28..], PackingVersion);
        BinaryPrimitives.WriteInt64LittleEndian(span[32..], FileLength);
        BinaryPrimitives.WriteInt64LittleEndian(span[40..], Source.Size);
        BinaryPrimitives.WriteInt64LittleEndian(span[48..], Source.ModifiedNanoseconds);
        BinaryPrimitives.WriteUInt64LittleEndian(span[56..], Source.Inode);
        BinaryPrimitives.WriteUInt64LittleEndian(span[64..], Source.Device);
        Source.RegionHash.CopyTo(span[72..]);
        SourceContentHash.CopyTo(span[104..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[168..], (uint)Precision);
        int at = FixedBytes;
        foreach (var m in Matrices)
        {
            int nameLength = Encoding.UTF8.GetBytes(m.Name, span[(at + 2)..]);
            BinaryPrimitives.WriteUInt16LittleEndian(span[at..], (ushort)nameLength);
            at += 2 + nameLength;
            BinaryPrimitives.WriteUInt32LittleEndian(span[at..], (uint)m.ElementType);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 4)..], (uint)m.Rows);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 8)..], (uint)m.Columns);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 12)..], (uint)m.Sections.Count);
            at += RecordFixedBytes - 2;
            foreach (var section in m.Sections)
            {
                int sectionNameLength = Encoding.ASCII.GetBytes(section.Name, span[(at + 1)..]);
                span[at] = (byte)sectionNameLength;
                at += 1 + sectionNameLength;
                BinaryPrimitives.WriteUInt32LittleEndian(span[at..], (uint)section.Type);
                BinaryPrimitives.WriteInt64LittleEndian(span[(at + 8)..], section.Count);
                BinaryPrimitives.WriteInt64LittleEndian(span[(at + 16)..], section.Offset);
                BinaryPrimitives.WriteInt64LittleEndian(span[(at + 24)..], section.ByteLength);
                section.Checksum.CopyTo(span[(at + 32)..]);
                at += SectionFixedBytes - 1;
            }
        }
        SHA256.HashData(bytes).CopyTo(span[ChecksumOffset..]); // computed with the field still zero
        return bytes;
    }

    /// <summary>The metadata length a file claims in its first <see cref="FixedBytes"/> bytes, checked against the limits.</summary>
    /// <exception cref="PackedWeightsRejectedException">Not a packed-weights file, another layout version, or an impossible length.</exception>
    public static int ClaimedMetadataLength(ReadOnlySpan<byte> fixedHeader, long fileLength)
    {
        if (fixedHeader.Length < FixedBytes || !fixedHeader[..8].SequenceEqual(Magic))
            throw new PackedWeightsRejectedException("it is not a ManagedClip packed-weights file (no MCPANELS magic)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader[8..]);
        if (version != LayoutVersion)
            throw new PackedWeightsRejectedException($"it has layout version {version}; this ManagedClip reads version {LayoutVersion}");
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(fixedHeader[12..]);
        if (length < FixedBytes || length > MaxMetadataBytes || length > fileLength)
            throw new PackedWeightsRejectedException($"its header claims {length:N0} bytes of metadata in a {fileLength:N0}-byte file");
        return (int)length;
    }

    /// <summary>
    /// Parses and checks metadata read from a file of <paramref name="fileLength"/> bytes: checksum, panel width, table
    /// bounds, alignment, overlap and lengths. It does not look at the sections' bytes.
    /// </summary>
    /// <exception cref="PackedWeightsRejectedException">Says what is wrong, in one line.</exception>
    public static PackedWeightsHeader Parse(ReadOnlySpan<byte> metadata, long fileLength, int expectedPanelWidth)
    {
        int length = ClaimedMetadataLength(metadata, fileLength);
        if (metadata.Length != length) throw new PackedWeightsRejectedException($"its metadata is {metadata.Length:N0} bytes, the header says {length:N0}");
        var copy = metadata.ToArray();
        copy.AsSpan(ChecksumOffset, 32).Clear();
        if (!SHA256.HashData(copy).AsSpan().SequenceEqual(metadata.Slice(ChecksumOffset, 32)))
            throw new PackedWeightsRejectedException("its header or table is damaged (checksum mismatch)");
        uint panelWidth = BinaryPrimitives.ReadUInt32LittleEndian(metadata[16..]);
        if (panelWidth != expectedPanelWidth)
            throw new PackedWeightsRejectedException($"it was packed for {panelWidth}-wide panels; these kernels read {expectedPanelWidth}");
        long claimedFileLength = BinaryPrimitives.ReadInt64LittleEndian(metadata[32..]);
        if (claimedFileLength != fileLength)
            throw new PackedWeightsRejectedException($"it is {fileLength:N0} bytes, its header says {claimedFileLength:N0} (truncated or extended)");
        uint count = BinaryPrimitives.ReadUInt32LittleEndian(metadata[24..]);
        if (count > (length - FixedBytes) / (RecordFixedBytes + 1 + SectionFixedBytes + 1))
            throw new PackedWeightsRejectedException($"its header claims {count:N0} matrices, more than its {length:N0}-byte table can hold");

        var matrices = new List<PackedMatrixEntry>((int)count);
        long dataEnd = Align(length); // the first section may start here; each starts after the previous one ends
        int at = FixedBytes;
        for (int i = 0; i < count; i++)
        {
            if (length - at < RecordFixedBytes) throw new PackedWeightsRejectedException($"its table ends inside matrix record {i}");
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(metadata[at..]);
            if (nameLength is 0 or > MaxNameBytes || length - at < RecordFixedBytes + nameLength)
                throw new PackedWeightsRejectedException($"matrix record {i} has a name of {nameLength} bytes, outside its table");
            string name;
            try
            {
                name = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(metadata.Slice(at + 2, nameLength));
            }
            catch (DecoderFallbackException)
            {
                throw new PackedWeightsRejectedException($"matrix record {i} has a name that is not UTF-8");
            }
            var r = metadata[(at + 2 + nameLength)..];
            var elementType = (PackedElementType)BinaryPrimitives.ReadUInt32LittleEndian(r);
            int rows = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(r[4..]), int.MaxValue);
            int columns = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(r[8..]), int.MaxValue);
            uint sectionCount = BinaryPrimitives.ReadUInt32LittleEndian(r[12..]);
            if (sectionCount is 0 or > MaxSections)
                throw new PackedWeightsRejectedException($"matrix '{name}' claims {sectionCount:N0} arrays; a matrix has 1 to {MaxSections}");
            at += RecordFixedBytes + nameLength;
            var sections = new List<PackedSection>((int)sectionCount);
            for (int j = 0; j < sectionCount; j++)
            {
                int sectionNameLength = length - at > 0 ? metadata[at] : 0;
                if (sectionNameLength is 0 or > MaxSectionNameBytes || length - at < SectionFixedBytes + sectionNameLength)
                    throw new PackedWeightsRejectedException($"matrix '{name}' has an array record {j} of {sectionNameLength} name bytes, outside its table");
                var nameBytes = metadata.Slice(at + 1, sectionNameLength);
                if (nameBytes.ContainsAnyExceptInRange((byte)0x21, (byte)0x7E))
                    throw new PackedWeightsRejectedException($"matrix '{name}' has an array whose name is not printable ASCII");
                var f = metadata[(at + 1 + sectionNameLength)..];
                var section = new PackedSection(Encoding.ASCII.GetString(nameBytes), (WeightArrayType)BinaryPrimitives.ReadUInt32LittleEndian(f),
                    BinaryPrimitives.ReadInt64LittleEndian(f[8..]), BinaryPrimitives.ReadInt64LittleEndian(f[16..]),
                    BinaryPrimitives.ReadInt64LittleEndian(f[24..]), f.Slice(32, 32).ToArray());
                at += SectionFixedBytes + sectionNameLength;
                if (section.Offset < dataEnd || section.Offset % Alignment != 0 || section.ByteLength <= 0 || section.ByteLength > fileLength - section.Offset)
                    throw new PackedWeightsRejectedException($"array '{section.Name}' of matrix '{name}' lies at bytes [{section.Offset:N0}, +{section.ByteLength:N0}), not an aligned range after the previous one inside the file");
                int elementBytes = WeightArrayShape.ElementBytes(section.Type);
                if (elementBytes == 0 || section.Count <= 0 || section.Count > section.ByteLength / elementBytes || section.Count * elementBytes != section.ByteLength)
                    throw new PackedWeightsRejectedException($"array '{section.Name}' of matrix '{name}' has {section.Count:N0} elements of type {(uint)section.Type} in {section.ByteLength:N0} bytes");
                if (sections.Any(s => s.Name == section.Name))
                    throw new PackedWeightsRejectedException($"matrix '{name}' has two arrays named '{section.Name}'");
                dataEnd = section.Offset + section.ByteLength;
                sections.Add(section);
            }
            matrices.Add(new PackedMatrixEntry(name, elementType, rows, columns, sections));
        }
        if (at != length) throw new PackedWeightsRejectedException($"its table ends at byte {at:N0}, the header says {length:N0}");
        return new PackedWeightsHeader
        {
            PanelWidth = panelWidth,
            VectorBits = BinaryPrimitives.ReadUInt32LittleEndian(metadata[20..]),
            PackingVersion = BinaryPrimitives.ReadUInt32LittleEndian(metadata[28..]),
            Precision = (PackedElementType)BinaryPrimitives.ReadUInt32LittleEndian(metadata[168..]),
            FileLength = fileLength,
            Source = new WeightsIdentity(BinaryPrimitives.ReadInt64LittleEndian(metadata[40..]), BinaryPrimitives.ReadInt64LittleEndian(metadata[48..]),
                BinaryPrimitives.ReadUInt64LittleEndian(metadata[56..]), BinaryPrimitives.ReadUInt64LittleEndian(metadata[64..]), metadata.Slice(72, 32).ToArray()),
            SourceContentHash = metadata.Slice(104, 32).ToArray(),
            Matrices = matrices,
        };
    }
}
