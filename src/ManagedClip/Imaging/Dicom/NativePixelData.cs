using System.Buffers.Binary;

namespace ManagedClip.Imaging.Dicom;

/// <summary>
/// The stored value inside a Bits Allocated cell (PS3.5 §8.1.1, PS3.3 C.7.6.3.1): the Bits Stored-bit field that
/// ends at High Bit, two's complement when Pixel Representation is 1. The bits outside the field (overlays, junk)
/// are dropped, so a 12-bit −1 written as cell 0x0FFF reads as −1.
/// </summary>
internal readonly struct StoredValueField
{
    private readonly int shift;
    private readonly uint mask;
    private readonly uint signBit;
    private readonly bool signed;

    /// <param name="attributes">Bits Stored, High Bit, Pixel Representation.</param>
    /// <param name="highBit">Where the field ends: High Bit for native and RLE cells; Bits Stored − 1 for a codec's
    /// output, whose samples are already the stored values.</param>
    public StoredValueField(DicomImageAttributes attributes, int highBit)
    {
        shift = highBit + 1 - attributes.BitsStored;
        mask = attributes.BitsStored == 32 ? uint.MaxValue : (1u << attributes.BitsStored) - 1;
        signBit = 1u << (attributes.BitsStored - 1);
        signed = attributes.Signed;
    }

    public int Extract(uint cell)
    {
        uint value = (cell >> shift) & mask;
        // Two's complement of the field: subtract 2^bits when the field's top bit is set.
        return signed && (value & signBit) != 0 ? (int)value - (int)(signBit << 1) : (int)value;
    }
}

/// <summary>
/// Native (uncompressed) Pixel Data (PS3.5 §8.1): frames one after another, each <c>rows × columns</c> pixels of
/// Bits Allocated cells in the data set's byte order, with the samples of a pixel together (Planar Configuration 0)
/// or one plane per sample (1). YBR_FULL_422 keeps <c>Y1 Y2 Cb Cr</c> for each horizontal pair of pixels.
/// </summary>
internal static class NativePixelData
{
    /// <summary>Reads frame <paramref name="frame"/> into stored values <c>[rows, columns, samples]</c>.</summary>
    /// <param name="pixelData">The Pixel Data element's value.</param>
    /// <param name="attributes">Checked image attributes.</param>
    /// <param name="frame">Zero-based frame index, below <see cref="DicomImageAttributes.Frames"/>.</param>
    /// <param name="littleEndian">Byte order of 16-bit cells.</param>
    /// <param name="wordSwapped">8-bit cells in an OW value of a big endian data set: each byte pair is swapped.</param>
    /// <param name="sourceName">Name for messages.</param>
    public static int[] ReadFrame(ReadOnlySpan<byte> pixelData, DicomImageAttributes attributes, int frame, bool littleEndian,
        bool wordSwapped, string sourceName)
    {
        long frameBytes = attributes.NativeFrameBytes;
        long framesPresent = pixelData.Length / frameBytes;
        if (framesPresent < attributes.Frames)
            throw InvalidImage.Error(sourceName,
                $"DICOM Pixel Data holds {pixelData.Length:N0} bytes, but {attributes.Frames} frame(s) of {attributes.Columns}x{attributes.Rows} pixels, " +
                $"{attributes.SamplesPerPixel} sample(s) of {attributes.BitsAllocated} bits need {frameBytes * attributes.Frames:N0} (truncated file or wrong header)");

        if (wordSwapped && pixelData.Length % 2 != 0)
            throw InvalidImage.Error(sourceName, $"DICOM Pixel Data of VR OW has an odd length ({pixelData.Length:N0} bytes)");

        var field = new StoredValueField(attributes, attributes.HighBit);
        int start = checked((int)(frameBytes * frame));
        var cells = pixelData.Slice(start, (int)frameBytes);
        var values = new int[attributes.ValueCount]; // [rows, columns, samples]
        int pixels = attributes.PixelCount;

        if (attributes.Photometric == Photometric.YbrFull422)
        {
            // Y1 Y2 Cb Cr per pair of pixels: both pixels take the pair's Cb and Cr.
            for (int pair = 0; pair < pixels / 2; pair++)
            {
                int cell = 4 * pair, pixel = 2 * pair;
                int cb = field.Extract(Cell(pixelData, start, cell + 2)), cr = field.Extract(Cell(pixelData, start, cell + 3));
                values[3 * pixel] = field.Extract(Cell(pixelData, start, cell));
                values[3 * pixel + 1] = cb;
                values[3 * pixel + 2] = cr;
                values[3 * pixel + 3] = field.Extract(Cell(pixelData, start, cell + 1));
                values[3 * pixel + 4] = cb;
                values[3 * pixel + 5] = cr;
            }
        }
        else if (attributes.SamplesPerPixel == 3 && attributes.PlanarConfiguration == 1)
        {
            // R plane, G plane, B plane → interleaved.
            for (int sample = 0; sample < 3; sample++)
                for (int pixel = 0; pixel < pixels; pixel++)
                    values[3 * pixel + sample] = field.Extract(Cell(pixelData, start, sample * pixels + pixel));
        }
        else if (attributes.BitsAllocated == 8 && !wordSwapped)
        {
            for (int i = 0; i < values.Length; i++) values[i] = field.Extract(cells[i]);
        }
        else if (attributes.BitsAllocated == 16 && littleEndian)
        {
            for (int i = 0; i < values.Length; i++) values[i] = field.Extract(BinaryPrimitives.ReadUInt16LittleEndian(cells[(2 * i)..]));
        }
        else
        {
            for (int i = 0; i < values.Length; i++) values[i] = field.Extract(Cell(pixelData, start, i));
        }
        return values;

        // Cell `index` of the frame starting at byte `start`; byte pairs are swapped in the whole value, not per frame.
        uint Cell(ReadOnlySpan<byte> data, int start, int index) => attributes.BitsAllocated == 8
            ? data[wordSwapped ? (start + index) ^ 1 : start + index]
            : littleEndian
                ? BinaryPrimitives.ReadUInt16LittleEndian(data[(start + 2 * index)..])
                : BinaryPrimitives.ReadUInt16BigEndian(data[(start + 2 * index)..]);
    }
}
