using System.Buffers.Binary;

namespace ManagedClip.Imaging.Dicom;

/// <summary>
/// One data element's header (PS3.5 §7.1): tag, VR (0 when implicit or for items), value length and where the value
/// starts. <see cref="Length"/> is <see cref="DicomElementReader.UndefinedLength"/> for sequences, items and
/// encapsulated Pixel Data whose end is marked by a delimiter instead.
/// </summary>
internal readonly record struct ElementHeader(uint Tag, ushort Vr, uint Length, int ValueOffset)
{
    public bool HasUndefinedLength => Length == DicomElementReader.UndefinedLength;

    /// <summary>The VR as its two letters, or "implicit".</summary>
    public string VrText => Vr == 0 ? "implicit" : $"{(char)(Vr >> 8)}{(char)(Vr & 0xFF)}";
}

/// <summary>
/// Walks the data elements of an encoded data set held in memory, in one of the three encodings of PS3.5 §7.1:
/// explicit VR little endian, implicit VR little endian, explicit VR big endian. Every length is checked against
/// the bytes that are there, so a lying header cannot make it read past the end.
/// </summary>
/// <remarks>
/// Element layout:
/// <code>
/// explicit, short VRs    tag(4) VR(2) length(2)            value
/// explicit, long VRs     tag(4) VR(2) 0000  length(4)      value   (OB OD OF OL OV OW SQ SV UC UN UR UT UV)
/// implicit               tag(4) length(4)                  value
/// items, delimiters      tag(4) length(4)                  (FFFE,E000) (FFFE,E00D) (FFFE,E0DD), any encoding
/// </code>
/// A tag is two 16-bit numbers, group then element, each in the data set's byte order.
/// </remarks>
internal ref struct DicomElementReader
{
    public const uint UndefinedLength = 0xFFFF_FFFF;

    public const uint Item = 0xFFFE_E000;
    public const uint ItemDelimitation = 0xFFFE_E00D;
    public const uint SequenceDelimitation = 0xFFFE_E0DD;

    private readonly ReadOnlySpan<byte> data;
    private readonly string sourceName;
    private readonly string where; // " of the inflated data set" for deflated files, "" otherwise
    private readonly long baseOffset; // offset of data[0] in the file (or in the inflated data set), for messages

    /// <param name="data">The encoded data set (or the part of it being read).</param>
    /// <param name="explicitVr">VR written in each element header.</param>
    /// <param name="littleEndian">Byte order of tags, lengths and binary values.</param>
    /// <param name="sourceName">File name for messages.</param>
    /// <param name="baseOffset">Offset of <paramref name="data"/>[0], for messages.</param>
    /// <param name="where">Appended to byte offsets in messages (e.g. " of the inflated data set").</param>
    public DicomElementReader(ReadOnlySpan<byte> data, bool explicitVr, bool littleEndian, string sourceName, long baseOffset, string where)
    {
        this.data = data;
        ExplicitVr = explicitVr;
        LittleEndian = littleEndian;
        this.sourceName = sourceName;
        this.baseOffset = baseOffset;
        this.where = where;
    }

    public bool ExplicitVr { get; }

    public bool LittleEndian { get; }

    /// <summary>Offset of the next element header in <see cref="Data"/>.</summary>
    public int Position { get; set; }

    public readonly ReadOnlySpan<byte> Data => data;

    public readonly bool AtEnd => Position >= data.Length;

    public readonly int Remaining => data.Length - Position;

    /// <summary>A reader of the same bytes with another encoding, at the same position (VR UN sequence contents).</summary>
    public readonly DicomElementReader WithEncoding(bool explicitVr, bool littleEndian) =>
        new(data, explicitVr, littleEndian, sourceName, baseOffset, where) { Position = Position };

    /// <summary>Byte offset for messages: "byte 1234" or "byte 1234 of the inflated data set".</summary>
    public readonly string Describe(int position) => $"byte {baseOffset + position}{where}";

    /// <summary>Reads the header at <see cref="Position"/> and moves to the start of its value.</summary>
    public ElementHeader ReadHeader()
    {
        int start = Position;
        if (Remaining < 8) throw Truncated($"an element header at {Describe(start)} needs 8 bytes but only {Remaining} remain");
        uint tag = ((uint)ReadUInt16(data[start..]) << 16) | ReadUInt16(data[(start + 2)..]);
        ushort vr = 0;
        uint length;
        if (!ExplicitVr || tag >> 16 == 0xFFFE)
        {
            length = ReadUInt32(data[(start + 4)..]);
            Position = start + 8;
        }
        else
        {
            vr = (ushort)(data[start + 4] << 8 | data[start + 5]);
            if (!ValueRepresentations.IsKnown(vr))
                throw InvalidImage.Error(sourceName,
                    $"element {DicomTags.Format(tag)} at {Describe(start)} has an unknown VR (bytes {data[start + 4]:X2} {data[start + 5]:X2}); the file is damaged or not explicit VR");
            if (ValueRepresentations.HasLongLength(vr))
            {
                if (Remaining < 12) throw Truncated($"the header of element {DicomTags.Format(tag)} at {Describe(start)} is cut off");
                length = ReadUInt32(data[(start + 8)..]);
                Position = start + 12;
            }
            else
            {
                length = ReadUInt16(data[(start + 6)..]);
                Position = start + 8;
            }
        }
        return new ElementHeader(tag, vr, length, Position);
    }

    /// <summary>The value of <paramref name="header"/> (defined length), checked against the bytes that remain.</summary>
    public readonly ReadOnlySpan<byte> Value(ElementHeader header)
    {
        CheckFits(header);
        return data.Slice(header.ValueOffset, (int)header.Length);
    }

    /// <summary>Moves past the value of <paramref name="header"/> (defined length).</summary>
    public void Skip(ElementHeader header)
    {
        CheckFits(header);
        Position = header.ValueOffset + (int)header.Length;
    }

    /// <summary>Throws unless the defined-length value of <paramref name="header"/> lies inside the data.</summary>
    public readonly void CheckFits(ElementHeader header)
    {
        if (header.HasUndefinedLength)
            throw InvalidImage.Error(sourceName, $"element {DicomTags.Format(header.Tag)} at {Describe(header.ValueOffset)} has an undefined length where a value was expected");
        long available = data.Length - header.ValueOffset;
        if (header.Length > available)
            throw Truncated($"element {DicomTags.Format(header.Tag)} at {Describe(header.ValueOffset)} declares {header.Length:N0} bytes but only {available:N0} remain");
    }

    public readonly ushort ReadUInt16(ReadOnlySpan<byte> bytes) =>
        LittleEndian ? BinaryPrimitives.ReadUInt16LittleEndian(bytes) : BinaryPrimitives.ReadUInt16BigEndian(bytes);

    public readonly uint ReadUInt32(ReadOnlySpan<byte> bytes) =>
        LittleEndian ? BinaryPrimitives.ReadUInt32LittleEndian(bytes) : BinaryPrimitives.ReadUInt32BigEndian(bytes);

    public readonly InvalidDataException Truncated(string detail) =>
        InvalidImage.Error(sourceName, $"truncated or damaged DICOM file: {detail}");
}

/// <summary>The value representations of PS3.5 §6.2, as their two ASCII letters packed into 16 bits.</summary>
internal static class ValueRepresentations
{
    public const ushort OB = 'O' << 8 | 'B';
    public const ushort OW = 'O' << 8 | 'W';
    public const ushort SQ = 'S' << 8 | 'Q';
    public const ushort SS = 'S' << 8 | 'S';
    public const ushort UN = 'U' << 8 | 'N';

    private static readonly HashSet<ushort> Known = Pack(
        "AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV");

    // The VRs whose header has two reserved bytes and a 32-bit length (PS3.5 Table 7.1-1).
    private static readonly HashSet<ushort> LongLength = Pack("OB OD OF OL OV OW SQ SV UC UN UR UT UV");

    public static bool IsKnown(ushort vr) => Known.Contains(vr);

    public static bool HasLongLength(ushort vr) => LongLength.Contains(vr);

    private static HashSet<ushort> Pack(string names) =>
        names.Split(' ').Select(name => (ushort)(name[0] << 8 | name[1])).ToHashSet();
}
