using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace ManagedClip.Imaging.Dicom;

/// <summary>A kept element's value bytes (copied out of the file), its VR (0 when implicit) and byte order.</summary>
internal sealed record DicomValue(byte[] Bytes, ushort Vr, bool LittleEndian)
{
    /// <summary>The value as text without its padding (trailing spaces and NULs, leading spaces).</summary>
    public string Text => Encoding.ASCII.GetString(Bytes).Trim(' ', '\0');

    /// <summary>The backslash-separated values of a string VR (DS, IS, CS), each trimmed; empty values dropped.</summary>
    public string[] Strings => Text.Split('\\').Select(v => v.Trim(' ', '\0')).Where(v => v.Length > 0).ToArray();

    /// <summary>The 16-bit binary values (US, SS, OW), in the value's byte order.</summary>
    public ushort[] UInt16s => Numbers(2, BinaryPrimitives.ReadUInt16LittleEndian, BinaryPrimitives.ReadUInt16BigEndian);

    /// <summary>The 64-bit binary values (OV).</summary>
    public ulong[] UInt64s => Numbers(8, BinaryPrimitives.ReadUInt64LittleEndian, BinaryPrimitives.ReadUInt64BigEndian);

    private delegate T NumberReader<out T>(ReadOnlySpan<byte> bytes);

    private T[] Numbers<T>(int size, NumberReader<T> littleEndian, NumberReader<T> bigEndian)
    {
        var read = LittleEndian ? littleEndian : bigEndian;
        var values = new T[Bytes.Length / size];
        for (int i = 0; i < values.Length; i++) values[i] = read(Bytes.AsSpan(size * i));
        return values;
    }
}

/// <summary>The first item of a Modality or VOI LUT Sequence: its LUT Descriptor and LUT Data, as stored.</summary>
internal sealed record LutItem(DicomValue? Descriptor, DicomValue? Data);

/// <summary>
/// Where the Pixel Data element's value lies in the data set bytes. <see cref="Length"/> is
/// <see cref="DicomElementReader.UndefinedLength"/> for encapsulated pixel data.
/// </summary>
internal readonly record struct PixelDataLocation(uint Tag, ushort Vr, int Offset, uint Length);

/// <summary>
/// The parts of a data set that rendering needs: the values of <see cref="DicomTags.IsKept"/> attributes at the top
/// level, the first items of the two LUT sequences, and where the Pixel Data is. Attributes inside other sequences
/// (an Icon Image Sequence has its own Rows and Pixel Data) are skipped, never confused with the image's own.
/// </summary>
internal sealed class DicomDataSet
{
    // Sequences nested deeper than this are refused: real files nest a few levels, and each level costs stack.
    public const int MaxSequenceDepth = 64;

    private readonly Dictionary<uint, DicomValue> values = new();

    private DicomDataSet() { }

    public LutItem? ModalityLut { get; private set; }

    public LutItem? VoiLut { get; private set; }

    /// <summary>Null when the data set ends without Pixel Data.</summary>
    public PixelDataLocation? Pixels { get; private set; }

    public DicomValue? this[uint tag] => values.GetValueOrDefault(tag);

    /// <summary>
    /// Reads the data set in <paramref name="reader"/> up to its Pixel Data element (nothing after it matters here).
    /// </summary>
    public static DicomDataSet Parse(ref DicomElementReader reader, string sourceName)
    {
        var dataSet = new DicomDataSet();
        while (!reader.AtEnd)
        {
            var header = reader.ReadHeader();
            if (header.Tag is DicomTags.PixelData or DicomTags.FloatPixelData or DicomTags.DoubleFloatPixelData)
            {
                if (!header.HasUndefinedLength) reader.CheckFits(header);
                dataSet.Pixels = new PixelDataLocation(header.Tag, header.Vr, header.ValueOffset, header.Length);
                return dataSet;
            }
            if (header.Tag >> 16 == 0xFFFE)
                throw InvalidImage.Error(sourceName, $"damaged DICOM file: item tag {DicomTags.Format(header.Tag)} at {reader.Describe(header.ValueOffset - 8)} outside any sequence");

            if (header.Tag is DicomTags.ModalityLutSequence or DicomTags.VoiLutSequence)
            {
                var item = ReadFirstLutItem(ref reader, header, sourceName);
                if (header.Tag == DicomTags.ModalityLutSequence) dataSet.ModalityLut = item;
                else dataSet.VoiLut = item;
            }
            else if (header.HasUndefinedLength)
            {
                SkipSequence(ref reader, header, depth: 1, sourceName);
            }
            else
            {
                if (DicomTags.IsKept(header.Tag))
                    dataSet.values[header.Tag] = new DicomValue(reader.Value(header).ToArray(), header.Vr, reader.LittleEndian);
                reader.Skip(header);
            }
        }
        return dataSet;
    }

    /// <summary>
    /// Reads a LUT sequence and returns its first item's LUT Descriptor and LUT Data (null for an empty sequence:
    /// the rule then goes on to the next step). Later items (other LUTs to choose from) are skipped.
    /// </summary>
    private static LutItem? ReadFirstLutItem(ref DicomElementReader reader, ElementHeader sequence, string sourceName)
    {
        var items = ContentReader(ref reader, sequence);
        int end = sequence.HasUndefinedLength ? items.Data.Length : sequence.ValueOffset + (int)sequence.Length;
        LutItem? first = null;
        while (items.Position < end)
        {
            var item = items.ReadHeader();
            if (item.Tag == DicomElementReader.SequenceDelimitation) break;
            CheckItemTag(ref items, item, sourceName);
            if (first != null)
            {
                SkipItem(ref items, item, depth: 1, sourceName);
                continue;
            }
            if (!item.HasUndefinedLength) items.CheckFits(item);
            int itemEnd = item.HasUndefinedLength ? items.Data.Length : item.ValueOffset + (int)item.Length;
            DicomValue? descriptor = null, data = null;
            while (items.Position < itemEnd)
            {
                var element = items.ReadHeader();
                if (element.Tag == DicomElementReader.ItemDelimitation) break;
                if (element.HasUndefinedLength)
                {
                    SkipSequence(ref items, element, depth: 2, sourceName);
                    continue;
                }
                if (element.Tag == DicomTags.LutDescriptor) descriptor = new DicomValue(items.Value(element).ToArray(), element.Vr, items.LittleEndian);
                else if (element.Tag == DicomTags.LutData) data = new DicomValue(items.Value(element).ToArray(), element.Vr, items.LittleEndian);
                items.Skip(element);
            }
            if (!item.HasUndefinedLength) items.Position = itemEnd;
            first = new LutItem(descriptor, data);
        }
        reader.Position = sequence.HasUndefinedLength ? items.Position : sequence.ValueOffset + (int)sequence.Length;
        return first;
    }

    /// <summary>
    /// Skips a sequence (or encapsulated pixel data nested in an item) of undefined length: items up to the
    /// Sequence Delimitation Item, each item either by its length or element by element up to its delimiter.
    /// </summary>
    private static void SkipSequence(ref DicomElementReader reader, ElementHeader sequence, int depth, string sourceName)
    {
        if (depth > MaxSequenceDepth)
            throw InvalidImage.Error(sourceName, $"DICOM sequences nested more than {MaxSequenceDepth} deep at {reader.Describe(sequence.ValueOffset)}; refusing the file");
        if (reader.ExplicitVr && sequence.Vr is not (ValueRepresentations.SQ or ValueRepresentations.UN or ValueRepresentations.OB or ValueRepresentations.OW))
            throw InvalidImage.Error(sourceName,
                $"damaged DICOM file: element {DicomTags.Format(sequence.Tag)} (VR {sequence.VrText}) at {reader.Describe(sequence.ValueOffset)} has an undefined length, which only sequences may have");
        var items = ContentReader(ref reader, sequence);
        while (true)
        {
            var item = items.ReadHeader();
            if (item.Tag == DicomElementReader.SequenceDelimitation) break;
            CheckItemTag(ref items, item, sourceName);
            SkipItem(ref items, item, depth, sourceName);
        }
        reader.Position = items.Position;
    }

    /// <summary>Skips an item of a sequence nested <paramref name="depth"/> deep (its own sequences are one deeper).</summary>
    private static void SkipItem(ref DicomElementReader reader, ElementHeader item, int depth, string sourceName)
    {
        if (!item.HasUndefinedLength)
        {
            reader.Skip(item);
            return;
        }
        while (true)
        {
            var element = reader.ReadHeader();
            if (element.Tag == DicomElementReader.ItemDelimitation) return;
            if (element.HasUndefinedLength) SkipSequence(ref reader, element, depth + 1, sourceName);
            else reader.Skip(element);
        }
    }

    /// <summary>
    /// A reader for a sequence's items. A sequence of VR UN (a sequence the writer did not know) is encoded as
    /// implicit VR little endian whatever the data set's syntax (PS3.5 §6.2.2); others inherit the encoding.
    /// </summary>
    private static DicomElementReader ContentReader(ref DicomElementReader reader, ElementHeader sequence)
    {
        if (!sequence.HasUndefinedLength) reader.CheckFits(sequence);
        var contents = sequence.Vr == ValueRepresentations.UN ? reader.WithEncoding(explicitVr: false, littleEndian: true) : reader;
        contents.Position = sequence.ValueOffset;
        return contents;
    }

    private static void CheckItemTag(ref DicomElementReader reader, ElementHeader item, string sourceName)
    {
        if (item.Tag != DicomElementReader.Item)
            throw InvalidImage.Error(sourceName,
                $"damaged DICOM file: expected a sequence item (FFFE,E000) at {reader.Describe(item.ValueOffset - 8)}, found {DicomTags.Format(item.Tag)}");
    }
}

/// <summary>Number parsing for the string VRs, as Python's <c>float()</c> and <c>int()</c> read them.</summary>
internal static class DicomNumbers
{
    /// <summary>Decimal String (DS) values as doubles; a value that is not a finite number is an error.</summary>
    public static double[] ParseDecimals(DicomValue value, uint tag, string sourceName) =>
        value.Strings.Select(text =>
            double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double number) && double.IsFinite(number)
                ? number
                : throw InvalidImage.Error(sourceName, $"DICOM {DicomTags.Describe(tag)} holds '{Shorten(text)}', which is not a finite decimal number"))
            .ToArray();

    /// <summary>The first Integer String (IS) value, or null when the element is empty.</summary>
    public static long? ParseFirstInteger(DicomValue value, uint tag, string sourceName)
    {
        var strings = value.Strings;
        if (strings.Length == 0) return null;
        return long.TryParse(strings[0], NumberStyles.AllowLeadingSign | NumberStyles.AllowLeadingWhite | NumberStyles.AllowTrailingWhite,
            CultureInfo.InvariantCulture, out long number)
            ? number
            : throw InvalidImage.Error(sourceName, $"DICOM {DicomTags.Describe(tag)} holds '{Shorten(strings[0])}', which is not an integer");
    }

    private static string Shorten(string text) => text.Length <= 24 ? text : text[..24] + "…";
}
