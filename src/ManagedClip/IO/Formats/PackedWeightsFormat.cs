using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace ManagedClip.IO.Formats;

/// <summary>How the values of one matrix in a packed-weights file are stored.</summary>
internal enum PackedElementType : uint
{
    /// <summary>IEEE float32, the panels exactly as <see cref="Kernels.WeightMatrix.Packed"/> makes them in memory.</summary>
    Float32 = 1,
    /// <summary>Reserved for the bf16 mode: bfloat16 panels, no scales.</summary>
    BFloat16 = 2,
    /// <summary>Reserved for the int8 mode: int8 panels plus a scale block.</summary>
    Int8 = 3,
}

/// <summary>
/// One matrix in the table of a packed-weights file: where its panels [⌈N/32⌉, K, 32] lie and their checksum.
/// </summary>
/// <param name="Name">The parts' state-dict names joined by " + " (see <see cref="Model.PackedRequest"/>).</param>
/// <param name="ElementType">How the panel values are stored (float32 now).</param>
/// <param name="Rows">N, output features.</param>
/// <param name="Columns">K, input features.</param>
/// <param name="Offset">Byte offset of the panels in the file, a multiple of 4096.</param>
/// <param name="ByteLength">Bytes of the panels: ⌈N/32⌉·K·32 elements.</param>
/// <param name="ScaleOffset">Byte offset of the scale block (int8), 0 when there is none.</param>
/// <param name="ScaleByteLength">Bytes of the scale block, 0 when there is none.</param>
/// <param name="Checksum">SHA-256 of the panel bytes followed by the scale bytes.</param>
internal sealed record PackedMatrixEntry(string Name, PackedElementType ElementType, int Rows, int Columns,
    long Offset, long ByteLength, long ScaleOffset, long ScaleByteLength, byte[] Checksum);

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
/// matrix. All integers little-endian.
/// <code>
/// offset  bytes  field
///      0      8  magic "MCPANELS"
///      8      4  layout version (1)
///     12      4  metadata bytes M (header + table; the panels start at M rounded up to 4096)
///     16      4  panel width (32 output features per panel)
///     20      4  vector width in bits of the kernel path that packed it (informational: the layout does not depend on it)
///     24      4  matrix count
///     28      4  reserved, 0
///     32      8  file length in bytes
///     40      8  weights file: size
///     48      8  weights file: modification time, ns since 1970
///     56      8  weights file: inode (0 when unknown)
///     64      8  weights file: device (0 when unknown)
///     72     32  weights file: SHA-256 of its first MiB and last 64 KiB
///    104     32  weights file: SHA-256 of its whole content (at build time)
///    136     32  SHA-256 of the metadata bytes [0, M) with this field zeroed
///    168      8  reserved, 0
///    176         the table, one record per matrix:
///                  u16 name length L (1..1024), L bytes UTF-8 name, u32 element type, u32 N, u32 K, u32 reserved,
///                  u64 offset, u64 byte length, u64 scale offset, u64 scale byte length, 32 bytes SHA-256
/// </code>
/// </summary>
internal sealed class PackedWeightsHeader
{
    public static ReadOnlySpan<byte> Magic => "MCPANELS"u8;
    public const uint LayoutVersion = 1;
    public const int FixedBytes = 176;
    public const int Alignment = 4096;            // panels start on page boundaries: mappable, and 64-byte aligned for the kernels
    public const int MaxMetadataBytes = 16 << 20;  // far above the ~25 KB of BiomedCLIP's 74 matrices; bounds what a hostile header can make us read
    public const int MaxNameBytes = 1024;
    private const int RecordFixedBytes = 2 + 4 * 4 + 8 * 4 + 32;
    private const int ChecksumOffset = 136;

    public required uint PanelWidth { get; init; }
    public required uint VectorBits { get; init; }
    public required long FileLength { get; init; }
    public required WeightsIdentity Source { get; init; }
    public required byte[] SourceContentHash { get; init; }
    public required IReadOnlyList<PackedMatrixEntry> Matrices { get; init; }

    /// <summary>Bytes of header and table for matrices named <paramref name="names"/>.</summary>
    public static int MetadataLength(IEnumerable<string> names) =>
        checked(FixedBytes + names.Sum(n => RecordFixedBytes + Encoding.UTF8.GetByteCount(n)));

    /// <summary><paramref name="offset"/> rounded up to the next multiple of 4096.</summary>
    public static long Align(long offset) => (offset + Alignment - 1) / Alignment * Alignment;

    /// <summary>The metadata bytes, checksum included.</summary>
    public byte[] Serialize()
    {
        var bytes = new byte[MetadataLength(Matrices.Select(m => m.Name))];
        var span = bytes.AsSpan();
        Magic.CopyTo(span);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], LayoutVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(span[12..], (uint)bytes.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(span[16..], PanelWidth);
        BinaryPrimitives.WriteUInt32LittleEndian(span[20..], VectorBits);
        BinaryPrimitives.WriteUInt32LittleEndian(span[24..], (uint)Matrices.Count);
        BinaryPrimitives.WriteInt64LittleEndian(span[32..], FileLength);
        BinaryPrimitives.WriteInt64LittleEndian(span[40..], Source.Size);
        BinaryPrimitives.WriteInt64LittleEndian(span[48..], Source.ModifiedNanoseconds);
        BinaryPrimitives.WriteUInt64LittleEndian(span[56..], Source.Inode);
        BinaryPrimitives.WriteUInt64LittleEndian(span[64..], Source.Device);
        Source.RegionHash.CopyTo(span[72..]);
        SourceContentHash.CopyTo(span[104..]);
        int at = FixedBytes;
        foreach (var m in Matrices)
        {
            int nameLength = Encoding.UTF8.GetBytes(m.Name, span[(at + 2)..]);
            BinaryPrimitives.WriteUInt16LittleEndian(span[at..], (ushort)nameLength);
            at += 2 + nameLength;
            BinaryPrimitives.WriteUInt32LittleEndian(span[at..], (uint)m.ElementType);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 4)..], (uint)m.Rows);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 8)..], (uint)m.Columns);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 16)..], m.Offset);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 24)..], m.ByteLength);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 32)..], m.ScaleOffset);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 40)..], m.ScaleByteLength);
            m.Checksum.CopyTo(span[(at + 48)..]);
            at += RecordFixedBytes - 2;
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
    /// bounds, alignment, overlap and lengths. It does not look at the panels.
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
        if (count > (length - FixedBytes) / (RecordFixedBytes + 1))
            throw new PackedWeightsRejectedException($"its header claims {count:N0} matrices, more than its {length:N0}-byte table can hold");

        var matrices = new List<PackedMatrixEntry>((int)count);
        long dataEnd = Align(length); // the first panel may start here; each starts after the previous one ends
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
            var entry = new PackedMatrixEntry(name,
                (PackedElementType)BinaryPrimitives.ReadUInt32LittleEndian(r),
                (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(r[4..]), int.MaxValue),
                (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(r[8..]), int.MaxValue),
                BinaryPrimitives.ReadInt64LittleEndian(r[16..]), BinaryPrimitives.ReadInt64LittleEndian(r[24..]),
                BinaryPrimitives.ReadInt64LittleEndian(r[32..]), BinaryPrimitives.ReadInt64LittleEndian(r[40..]),
                r.Slice(48, 32).ToArray());
            at += RecordFixedBytes + nameLength;
            if (entry.Offset < dataEnd || entry.Offset % Alignment != 0 || entry.ByteLength <= 0 || entry.ByteLength > fileLength - entry.Offset)
                throw new PackedWeightsRejectedException($"matrix '{name}' lies at bytes [{entry.Offset:N0}, +{entry.ByteLength:N0}), not an aligned range after the previous one inside the file");
            dataEnd = entry.Offset + entry.ByteLength;
            if (entry.ScaleByteLength != 0 || entry.ScaleOffset != 0)
            {
                if (entry.ScaleOffset < dataEnd || entry.ScaleByteLength <= 0 || entry.ScaleByteLength > fileLength - entry.ScaleOffset)
                    throw new PackedWeightsRejectedException($"matrix '{name}' has its scales at bytes [{entry.ScaleOffset:N0}, +{entry.ScaleByteLength:N0}), outside the file or overlapping");
                dataEnd = entry.ScaleOffset + entry.ScaleByteLength;
            }
            matrices.Add(entry);
        }
        if (at != length) throw new PackedWeightsRejectedException($"its table ends at byte {at:N0}, the header says {length:N0}");
        return new PackedWeightsHeader
        {
            PanelWidth = panelWidth,
            VectorBits = BinaryPrimitives.ReadUInt32LittleEndian(metadata[20..]),
            FileLength = fileLength,
            Source = new WeightsIdentity(BinaryPrimitives.ReadInt64LittleEndian(metadata[40..]), BinaryPrimitives.ReadInt64LittleEndian(metadata[48..]),
                BinaryPrimitives.ReadUInt64LittleEndian(metadata[56..]), BinaryPrimitives.ReadUInt64LittleEndian(metadata[64..]), metadata.Slice(72, 32).ToArray()),
            SourceContentHash = metadata.Slice(104, 32).ToArray(),
            Matrices = matrices,
        };
    }
}
