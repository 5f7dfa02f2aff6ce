using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace ManagedClip.Imaging.Dicom;

/// <summary>
/// The outer layer of a DICOM file: finds the data set and how it is encoded. Two shapes are accepted:
/// <code>
/// Part 10 file   preamble(128) "DICM" File Meta group (0002,xxxx), explicit VR LE   data set
/// bare data set  [File Meta group]                                                  data set
/// </code>
/// The transfer syntax comes from the File Meta's (0002,0010). Without one, the encoding is guessed from the first
/// element as pydicom does with <c>force=True</c>: valid VR letters at bytes 4–5 mean explicit VR, and an explicit
/// first group that reads as 1024 or more in little endian means big endian; anything else is implicit VR little
/// endian (the default transfer syntax). A deflated data set is inflated here, with a size cap.
/// </summary>
internal readonly ref struct DicomFile
{
    private const int PreambleLength = 128;

    private DicomFile(TransferSyntax syntax, ReadOnlySpan<byte> dataSet, long dataSetOffset, string where)
    {
        Syntax = syntax;
        DataSet = dataSet;
        DataSetOffset = dataSetOffset;
        Where = where;
    }

    /// <summary>How the data set and its Pixel Data are encoded.</summary>
    public TransferSyntax Syntax { get; }

    /// <summary>The encoded data set (inflated for the deflated syntax), starting after the File Meta.</summary>
    public ReadOnlySpan<byte> DataSet { get; }

    /// <summary>Offset of <see cref="DataSet"/> in the file, for messages (0 for an inflated data set).</summary>
    public long DataSetOffset { get; }

    /// <summary>Added to byte offsets in messages: " of the inflated data set" when deflated.</summary>
    public string Where { get; }

    /// <summary>A reader positioned on the first element of the data set.</summary>
    public DicomElementReader CreateReader(string sourceName)
    {
        // pydicom's correction for files whose data set contradicts their transfer syntax (explicit VR declared,
        // implicit written, or the reverse): the first element decides. Byte order is taken as declared.
        bool explicitVr = DataSet.Length >= 6 ? ValueRepresentations.IsKnown(VrAt(DataSet, 4)) : Syntax.ExplicitVr;
        return new DicomElementReader(DataSet, explicitVr, Syntax.LittleEndian, sourceName, DataSetOffset, Where);
    }

    /// <summary>Whether <paramref name="data"/> starts with a Part 10 preamble and "DICM".</summary>
    public static bool HasPart10Signature(ReadOnlySpan<byte> data) =>
        data.Length >= PreambleLength + 4 && data.Slice(PreambleLength, 4).SequenceEqual("DICM"u8);

    /// <summary>
    /// Whether <paramref name="head"/> (the first bytes of a file, e.g. 4 KB) is DICOM: a Part 10 signature, or a
    /// bare data set whose first elements parse as ascending tags with lengths that fit. Used to pick DICOM from
    /// content (files without an extension, bytes from a request); it never throws.
    /// </summary>
    public static bool LooksLikeDicom(ReadOnlySpan<byte> head)
    {
        if (HasPart10Signature(head)) return true;
        if (head.Length < 8) return false;
        var (explicitVr, littleEndian) = GuessEncoding(head);
        int position = 0, parsed = 0;
        uint previous = 0;
        while (parsed < 3 && head.Length - position >= 8)
        {
            uint tag = ReadTag(head[position..], littleEndian);
            uint group = tag >> 16;
            // Real data sets start with the File Meta (0002), or with a low even group such as (0008,0005).
            if (parsed == 0 && (group < 0x0002 || group > 0x0030 || group % 2 != 0)) return false;
            if (tag <= previous || group == 0xFFFE) return false;
            uint length;
            int valueStart;
            if (explicitVr)
            {
                ushort vr = VrAt(head, position + 4);
                if (!ValueRepresentations.IsKnown(vr)) return false;
                if (ValueRepresentations.HasLongLength(vr))
                {
                    if (head.Length - position < 12) break;
                    length = ReadUInt32(head[(position + 8)..], littleEndian);
                    valueStart = position + 12;
                }
                else
                {
                    length = ReadUInt16(head[(position + 6)..], littleEndian);
                    valueStart = position + 8;
                }
            }
            else
            {
                length = ReadUInt32(head[(position + 4)..], littleEndian);
                valueStart = position + 8;
            }
            parsed++;
            previous = tag;
            // A sequence of undefined length, or a value running past the sampled head: nothing more to check.
            if (length == DicomElementReader.UndefinedLength || length > head.Length - valueStart) break;
            position = valueStart + (int)length;
        }
        return parsed >= 2 || (parsed == 1 && position == head.Length);
    }

    /// <summary>Finds the data set of <paramref name="file"/> and its transfer syntax; inflates a deflated one.</summary>
    /// <param name="file">The whole file.</param>
    /// <param name="sourceName">Name for messages.</param>
    /// <param name="maxInflatedBytes">Largest inflated data set accepted (a deflate bomb stops here).</param>
    public static DicomFile Open(ReadOnlySpan<byte> file, string sourceName, long maxInflatedBytes)
    {
        int position = HasPart10Signature(file) ? PreambleLength + 4 : 0;
        string? syntaxUid = null;
        if (file.Length - position >= 6 && BinaryPrimitives.ReadUInt16LittleEndian(file[position..]) == 0x0002)
        {
            // File Meta Information: explicit VR little endian by definition (a few writers use implicit VR; the
            // VR letters tell). It ends where group 0002 ends; its group length is not trusted.
            var meta = new DicomElementReader(file, ValueRepresentations.IsKnown(VrAt(file, position + 4)), true, sourceName, 0, "")
            {
                Position = position,
            };
            while (meta.Remaining >= 8 && BinaryPrimitives.ReadUInt16LittleEndian(file[meta.Position..]) == 0x0002)
            {
                var element = meta.ReadHeader();
                if (element.Tag == DicomTags.TransferSyntaxUid) syntaxUid = Encoding.ASCII.GetString(meta.Value(element)).Trim(' ', '\0');
                meta.Skip(element);
            }
            position = meta.Position;
        }

        TransferSyntax syntax;
        if (string.IsNullOrEmpty(syntaxUid))
        {
            var (explicitVr, littleEndian) = GuessEncoding(file[position..]);
            syntax = !explicitVr ? TransferSyntax.ImplicitVrLittleEndian
                : littleEndian ? TransferSyntax.ExplicitVrLittleEndian : TransferSyntax.ExplicitVrBigEndian;
        }
        else
        {
            // A UID is at most 64 digits and dots (PS3.5 §9.1); anything else is damage, not a syntax to name.
            if (syntaxUid.Length > 64 || !syntaxUid.All(c => c is '.' or (>= '0' and <= '9')))
                throw InvalidImage.Error(sourceName, $"damaged DICOM file: the Transfer Syntax UID ({syntaxUid.Length} characters) is not a UID");
            syntax = TransferSyntax.Find(syntaxUid) ?? throw InvalidImage.Error(sourceName,
                $"DICOM transfer syntax {syntaxUid} is not supported (unknown, retired or private); ManagedClip reads {SupportedSyntaxes}");
        }
        if (syntax.Pixels == PixelEncoding.Unsupported)
            throw InvalidImage.Error(sourceName, $"DICOM pixel data in {syntax} cannot be decoded; ManagedClip reads {SupportedSyntaxes}");

        if (!syntax.Deflated) return new DicomFile(syntax, file[position..], position, "");
        var inflated = Inflate(file[position..], sourceName, maxInflatedBytes);
        return new DicomFile(syntax, inflated, 0, " of the inflated data set");
    }

    /// <summary>The transfer syntaxes whose pixel data can be decoded, for refusal messages.</summary>
    public const string SupportedSyntaxes =
        "uncompressed (implicit/explicit VR, little/big endian, deflated), RLE Lossless, JPEG Baseline, JPEG Extended (12-bit), JPEG Lossless and JPEG-LS (lossless and near-lossless)";

    /// <summary>pydicom's guess for a data set without a declared transfer syntax (see the type's remarks).</summary>
    private static (bool ExplicitVr, bool LittleEndian) GuessEncoding(ReadOnlySpan<byte> dataSet)
    {
        if (dataSet.Length < 6 || !ValueRepresentations.IsKnown(VrAt(dataSet, 4))) return (false, true);
        return (true, BinaryPrimitives.ReadUInt16LittleEndian(dataSet) < 1024);
    }

    /// <summary>
    /// Inflates a raw deflate stream (RFC 1951, no zlib header: PS3.5 A.5) into memory, refusing to go past
    /// <paramref name="maxBytes"/> so that a small file cannot expand into gigabytes.
    /// </summary>
    private static unsafe byte[] Inflate(ReadOnlySpan<byte> deflated, string sourceName, long maxBytes)
    {
        // Inflated into 1 MiB chunks, joined once at the end: a bomb stops at the cap having allocated about the
        // cap, and a real data set costs its size twice at most.
        const int ChunkLength = 1 << 20;
        var chunks = new List<byte[]>();
        long total = 0;
        fixed (byte* start = deflated)
        {
            using var compressed = new UnmanagedMemoryStream(start, deflated.Length);
            using var inflater = new DeflateStream(compressed, CompressionMode.Decompress);
            while (true)
            {
                var chunk = new byte[ChunkLength];
                int filled = 0, read;
                do
                {
                    try
                    {
                        read = inflater.Read(chunk, filled, chunk.Length - filled);
                    }
                    catch (InvalidDataException e)
                    {
                        throw InvalidImage.Error(sourceName, $"damaged deflated DICOM data set: the deflate stream is invalid after {total + filled:N0} inflated bytes", e);
                    }
                    filled += read;
                }
                while (read > 0 && filled < chunk.Length);
                total += filled;
                if (total > maxBytes)
                    throw InvalidImage.Error(sourceName,
                        $"deflated DICOM data set inflates to more than {maxBytes:N0} bytes (the cap set by the pixel limit); refusing it");
                if (filled < chunk.Length)
                {
                    Array.Resize(ref chunk, filled);
                    chunks.Add(chunk);
                    break;
                }
                chunks.Add(chunk);
            }
        }
        var dataSet = new byte[total];
        long position = 0;
        foreach (var chunk in chunks)
        {
            chunk.CopyTo(dataSet, position);
            position += chunk.Length;
        }
        return dataSet;
    }

    private static ushort VrAt(ReadOnlySpan<byte> data, int offset) =>
        data.Length >= offset + 2 ? (ushort)(data[offset] << 8 | data[offset + 1]) : (ushort)0;

    private static uint ReadTag(ReadOnlySpan<byte> data, bool littleEndian) =>
        ((uint)ReadUInt16(data, littleEndian) << 16) | ReadUInt16(data[2..], littleEndian);

    private static ushort ReadUInt16(ReadOnlySpan<byte> data, bool littleEndian) =>
        littleEndian ? BinaryPrimitives.ReadUInt16LittleEndian(data) : BinaryPrimitives.ReadUInt16BigEndian(data);

    private static uint ReadUInt32(ReadOnlySpan<byte> data, bool littleEndian) =>
        littleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(data) : BinaryPrimitives.ReadUInt32BigEndian(data);
}
