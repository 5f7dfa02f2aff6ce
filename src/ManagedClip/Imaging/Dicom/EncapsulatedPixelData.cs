using System.Buffers.Binary;

namespace ManagedClip.Imaging.Dicom;

/// <summary>
/// Encapsulated Pixel Data (PS3.5 A.4): a sequence of items, the first the Basic Offset Table, the others fragments
/// of the compressed frames, ended by a Sequence Delimitation Item.
/// <code>
/// (FFFE,E000) len  Basic Offset Table: uint32 per frame, or empty
/// (FFFE,E000) len  fragment 0                    ← offsets count from this item's first byte
/// (FFFE,E000) len  fragment 1 …
/// (FFFE,E0DD) 0
/// </code>
/// A frame is one or more consecutive fragments. Which ones: the Basic Offset Table (or the Extended Offset Table,
/// (7FE0,0001)) gives each frame's first fragment; without one, a single frame takes every fragment, equal counts
/// pair one fragment with one frame, and otherwise JPEG frames end at the fragment that ends with an EOI marker.
/// Every offset is checked to point at a fragment.
/// </summary>
internal sealed class EncapsulatedPixelData
{
    /// <summary>A fragment: where its item starts (relative to the first fragment's item) and its bytes in the data set.</summary>
    private readonly record struct Fragment(long ItemOffset, int DataOffset, int Length);

    private readonly List<Fragment> fragments;
    private readonly ulong[] offsets; // Basic or Extended Offset Table: first fragment's item offset per frame; may be empty
    private readonly string tableName;
    private readonly string sourceName;

    private EncapsulatedPixelData(List<Fragment> fragments, ulong[] offsets, string tableName, string sourceName)
    {
        this.fragments = fragments;
        this.offsets = offsets;
        this.tableName = tableName;
        this.sourceName = sourceName;
    }

    public int FragmentCount => fragments.Count;

    /// <summary>Reads the item structure of the Pixel Data at <paramref name="location"/>.</summary>
    /// <param name="reader">Reader over the data set (encapsulated syntaxes are little endian).</param>
    /// <param name="location">The Pixel Data element.</param>
    /// <param name="extendedOffsets">Extended Offset Table (7FE0,0001) values, or null.</param>
    /// <param name="sourceName">Name for messages.</param>
    public static EncapsulatedPixelData Read(ref DicomElementReader reader, PixelDataLocation location, ulong[]? extendedOffsets, string sourceName)
    {
        // Normally of undefined length; a defined length (written by a few encoders) bounds the items instead.
        reader.Position = location.Offset;
        int end = location.Length == DicomElementReader.UndefinedLength ? reader.Data.Length : location.Offset + (int)location.Length;

        var table = reader.ReadHeader();
        if (table.Tag != DicomElementReader.Item)
            throw InvalidImage.Error(sourceName,
                $"damaged DICOM file: encapsulated Pixel Data at {reader.Describe(location.Offset)} does not start with an item (found {DicomTags.Format(table.Tag)})");
        if (table.HasUndefinedLength || table.Length % 4 != 0)
            throw InvalidImage.Error(sourceName, $"damaged DICOM file: the Basic Offset Table at {reader.Describe(table.ValueOffset)} has length {table.Length:N0}, not a multiple of 4");
        var tableBytes = reader.Value(table);
        var basicOffsets = new ulong[tableBytes.Length / 4];
        for (int i = 0; i < basicOffsets.Length; i++) basicOffsets[i] = BinaryPrimitives.ReadUInt32LittleEndian(tableBytes[(4 * i)..]);
        reader.Skip(table);

        int first = reader.Position;
        var fragments = new List<Fragment>();
        bool delimited = false;
        while (reader.Position < end)
        {
            var item = reader.ReadHeader();
            if (item.Tag == DicomElementReader.SequenceDelimitation)
            {
                delimited = true;
                break;
            }
            if (item.Tag != DicomElementReader.Item || item.HasUndefinedLength)
                throw InvalidImage.Error(sourceName,
                    $"damaged DICOM file: expected a pixel data fragment at {reader.Describe(item.ValueOffset - 8)}, found {DicomTags.Format(item.Tag)}" +
                    (item.HasUndefinedLength ? " of undefined length" : ""));
            reader.CheckFits(item);
            fragments.Add(new Fragment(item.ValueOffset - 8 - first, item.ValueOffset, (int)item.Length));
            reader.Skip(item);
        }
        if (!delimited && location.Length == DicomElementReader.UndefinedLength)
            throw InvalidImage.Error(sourceName, "truncated DICOM file: the encapsulated Pixel Data ends without its sequence delimiter");
        if (fragments.Count == 0) throw InvalidImage.Error(sourceName, "DICOM encapsulated Pixel Data holds no fragments");

        if (extendedOffsets is { Length: > 0 })
        {
            if (basicOffsets.Length > 0)
                throw InvalidImage.Error(sourceName, "DICOM file has both a Basic and an Extended Offset Table (the standard allows only one)");
            return new EncapsulatedPixelData(fragments, extendedOffsets, "Extended Offset Table", sourceName);
        }
        return new EncapsulatedPixelData(fragments, basicOffsets, "Basic Offset Table", sourceName);
    }

    /// <summary>
    /// The bytes of frame <paramref name="frame"/>: the one fragment's bytes in place, or its fragments joined into a
    /// new array (never larger than the file).
    /// </summary>
    /// <param name="dataSet">The data set bytes the fragments were read from.</param>
    /// <param name="frame">Zero-based frame index.</param>
    /// <param name="frames">Number of Frames.</param>
    /// <param name="endsAtEoi">Whether frames are JPEG streams (so an EOI marker ends a frame).</param>
    public ReadOnlySpan<byte> FrameBytes(ReadOnlySpan<byte> dataSet, int frame, int frames, bool endsAtEoi)
    {
        var (firstFragment, count) = FrameFragments(frame, frames, dataSet, endsAtEoi);
        if (count == 1) return dataSet.Slice(fragments[firstFragment].DataOffset, fragments[firstFragment].Length);
        long total = 0;
        for (int i = firstFragment; i < firstFragment + count; i++) total += fragments[i].Length;
        var joined = new byte[total];
        int position = 0;
        for (int i = firstFragment; i < firstFragment + count; i++)
        {
            dataSet.Slice(fragments[i].DataOffset, fragments[i].Length).CopyTo(joined.AsSpan(position));
            position += fragments[i].Length;
        }
        return joined;
    }

    private (int First, int Count) FrameFragments(int frame, int frames, ReadOnlySpan<byte> dataSet, bool endsAtEoi)
    {
        if (offsets.Length > 0)
        {
            if (offsets.Length != frames)
                throw InvalidImage.Error(sourceName, $"DICOM {tableName} has {offsets.Length} entries for {frames} frame(s)");
            // Every entry must name a fragment, the first the first fragment, in increasing order.
            var starts = new int[offsets.Length];
            for (int k = 0; k < offsets.Length; k++)
            {
                starts[k] = FragmentAt(k);
                if (k == 0 ? starts[k] != 0 : starts[k] <= starts[k - 1])
                    throw InvalidImage.Error(sourceName, $"DICOM {tableName} entry {k} (offset {offsets[k]:N0}) is out of order");
            }
            int next = frame + 1 < frames ? starts[frame + 1] : fragments.Count;
            return (starts[frame], next - starts[frame]);
        }

        if (frames == 1) return (0, fragments.Count);
        if (fragments.Count == frames) return (frame, 1);
        if (fragments.Count < frames)
            throw InvalidImage.Error(sourceName, $"DICOM encapsulated Pixel Data has {fragments.Count} fragment(s) for {frames} frames");
        if (!endsAtEoi)
            throw InvalidImage.Error(sourceName,
                $"DICOM Pixel Data has {fragments.Count} fragments for {frames} frames and no offset table, so the frames cannot be told apart");

        // JPEG: a frame's last fragment ends with the EOI marker FF D9 (then at most one padding byte).
        int frameStart = 0, seen = 0;
        for (int i = 0; i < fragments.Count; i++)
        {
            if (!EndsWithEoi(dataSet.Slice(fragments[i].DataOffset, fragments[i].Length))) continue;
            if (seen == frame) return (frameStart, i - frameStart + 1);
            seen++;
            frameStart = i + 1;
        }
        throw InvalidImage.Error(sourceName, $"DICOM Pixel Data: frame {frame} not found among {fragments.Count} fragments (no offset table; {seen} JPEG end-of-image markers)");
    }

    /// <summary>Index of the fragment whose item starts at table entry <paramref name="entry"/>.</summary>
    private int FragmentAt(int entry)
    {
        ulong offset = offsets[entry];
        int low = 0, high = fragments.Count - 1;
        while (low <= high)
        {
            int middle = (low + high) / 2;
            ulong start = (ulong)fragments[middle].ItemOffset;
            if (start == offset) return middle;
            if (start < offset) low = middle + 1;
            else high = middle - 1;
        }
        throw InvalidImage.Error(sourceName,
            $"DICOM {tableName} entry {entry} (offset {offset:N0}) does not point at a fragment of the Pixel Data");
    }

    private static bool EndsWithEoi(ReadOnlySpan<byte> fragment)
    {
        int end = fragment.Length;
        if (end > 0 && fragment[end - 1] == 0) end--; // fragments have even lengths: one byte of padding
        return end >= 2 && fragment[end - 2] == 0xFF && fragment[end - 1] == 0xD9;
    }
}
