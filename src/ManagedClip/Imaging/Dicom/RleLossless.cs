using System.Buffers.Binary;

namespace ManagedClip.Imaging.Dicom;

/// <summary>
/// RLE Lossless (PS3.5 Annex G). A frame is one fragment: a 64-byte header, then one PackBits-coded segment per
/// byte plane.
/// <code>
/// header    uint32 segment count (1..15), uint32 offset of each of 15 segments from the frame start (unused: 0)
/// segments  sample 0 most significant byte, sample 0 next byte, …, sample 1 most significant byte, …
/// PackBits  n = 0..127: copy the next n + 1 bytes; n = −127..−1: repeat the next byte 1 − n times; −128: nothing
/// </code>
/// Each segment decodes to rows × columns bytes (one byte of one sample of every pixel, row by row), whatever the
/// Planar Configuration says. A segment that decodes to more is cut (padding some encoders leave); one that decodes
/// to fewer is an error.
/// </summary>
internal static class RleLossless
{
    private const int HeaderLength = 64;

    /// <summary>Decodes one frame into stored values <c>[rows, columns, samples]</c>.</summary>
    public static int[] DecodeFrame(ReadOnlySpan<byte> frame, DicomImageAttributes attributes, string sourceName)
    {
        int bytesPerSample = attributes.BitsAllocated / 8;
        int expected = attributes.SamplesPerPixel * bytesPerSample;
        if (frame.Length < HeaderLength)
            throw InvalidImage.Error(sourceName, $"damaged DICOM RLE frame: {frame.Length} bytes, shorter than the 64-byte RLE header");
        int segmentCount = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(frame), int.MaxValue);
        if (segmentCount != expected)
            throw InvalidImage.Error(sourceName,
                $"damaged DICOM RLE frame: {segmentCount} segments, but {attributes.SamplesPerPixel} sample(s) of {attributes.BitsAllocated} bits need {expected}");

        var starts = new int[segmentCount + 1];
        for (int i = 0; i < segmentCount; i++)
        {
            uint offset = BinaryPrimitives.ReadUInt32LittleEndian(frame[(4 + 4 * i)..]);
            if (offset < HeaderLength || offset > frame.Length || (i > 0 && offset < starts[i - 1]))
                throw InvalidImage.Error(sourceName,
                    $"damaged DICOM RLE frame: segment {i} starts at {offset:N0}, outside the {frame.Length:N0}-byte frame or before the previous segment");
            starts[i] = (int)offset;
        }
        starts[segmentCount] = frame.Length;

        int pixels = attributes.PixelCount, samples = attributes.SamplesPerPixel;
        var cells = new int[attributes.ValueCount]; // [rows, columns, samples]: the Bits Allocated cells, then the stored values
        var plane = new byte[pixels];
        for (int segment = 0; segment < segmentCount; segment++)
        {
            Unpack(frame[starts[segment]..starts[segment + 1]], plane, segment, sourceName);
            int sample = segment / bytesPerSample;
            int shift = 8 * (bytesPerSample - 1 - segment % bytesPerSample); // most significant byte first
            for (int pixel = 0; pixel < pixels; pixel++) cells[pixel * samples + sample] |= plane[pixel] << shift;
        }

        var field = new StoredValueField(attributes, attributes.HighBit);
        for (int i = 0; i < cells.Length; i++) cells[i] = field.Extract((uint)cells[i]);
        return cells;
    }

    /// <summary>PackBits-decodes <paramref name="segment"/> into exactly <paramref name="plane"/>'s length of bytes.</summary>
    private static void Unpack(ReadOnlySpan<byte> segment, Span<byte> plane, int index, string sourceName)
    {
        int read = 0, written = 0;
        while (written < plane.Length && read < segment.Length)
        {
            int control = (sbyte)segment[read++];
            if (control >= 0)
            {
                int count = control + 1;
                if (read + count > segment.Length) break;
                int kept = Math.Min(count, plane.Length - written);
                segment.Slice(read, kept).CopyTo(plane[written..]);
                read += count;
                written += kept;
            }
            else if (control != -128)
            {
                if (read >= segment.Length) break;
                int kept = Math.Min(1 - control, plane.Length - written);
                plane.Slice(written, kept).Fill(segment[read++]);
                written += kept;
            }
        }
        if (written < plane.Length)
            throw InvalidImage.Error(sourceName,
                $"damaged DICOM RLE frame: segment {index} decodes to {written:N0} bytes, {plane.Length:N0} expected");
    }
}
