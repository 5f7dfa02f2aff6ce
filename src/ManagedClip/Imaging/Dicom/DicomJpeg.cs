using ManagedClip.Imaging.Jpeg;

namespace ManagedClip.Imaging.Dicom;

/// <summary>
/// JPEG frames of DICOM (PS3.5 A.4.1): Baseline (.4.50, 8-bit), Extended (.4.51, 8 or 12-bit) and Lossless
/// (.4.57 any predictor, .4.70 predictor 1, 2 to 16 bits), each frame one JPEG stream, decoded by
/// <see cref="JpegDecoder"/>.
/// </summary>
/// <remarks>
/// Colour: a YBR_FULL or YBR_FULL_422 frame keeps its Y, Cb, Cr planes (upsampled, not converted: the rendering
/// step converts them, by the DICOM formula). A Baseline frame labelled RGB is given as Pillow opens it, as pydicom's
/// Pillow handler does: components as stored when the stream says RGB (Adobe transform 0), converted when the
/// stream says YCbCr (a mislabelled file). Every other frame gives its components as stored.
/// </remarks>
internal static class DicomJpeg
{
    private const string JpegBaselineUid = "1.2.840.10008.1.2.4.50";

    /// <summary>Decodes one frame into stored values <c>[rows, columns, samples]</c>.</summary>
    public static int[] DecodeFrame(ReadOnlySpan<byte> frame, DicomImageAttributes attributes, string sourceName, long maxPixels)
    {
        var output = attributes.Syntax.Uid == JpegBaselineUid && attributes.Photometric == Photometric.Rgb
            ? JpegColorOutput.Pillow
            : JpegColorOutput.Raw;
        var image = JpegDecoder.Decode(frame, sourceName, maxPixels, output);
        CheckAgainstDataSet("JPEG", image.Width, image.Height, image.Components, image.Precision, attributes, sourceName);

        // The decoded samples are the stored cells; the same Bits Stored field is taken from them as from native data.
        var field = new StoredValueField(attributes, attributes.HighBit);
        var values = new int[attributes.ValueCount]; // [rows, columns, samples]
        if (image.Bytes is { } bytes)
            for (int i = 0; i < values.Length; i++) values[i] = field.Extract(bytes[i]);
        else
            for (int i = 0; i < values.Length; i++) values[i] = field.Extract(image.Samples![i]);
        return values;
    }

    /// <summary>A decoded frame must have the data set's size and samples, and fit in Bits Allocated.</summary>
    internal static void CheckAgainstDataSet(string codec, int width, int height, int components, int precision,
        DicomImageAttributes attributes, string sourceName)
    {
        if (width != attributes.Columns || height != attributes.Rows || components != attributes.SamplesPerPixel)
            throw InvalidImage.Error(sourceName,
                $"DICOM {codec} frame is {width}x{height} with {components} component(s), but the data set says " +
                $"{attributes.Columns}x{attributes.Rows} with {attributes.SamplesPerPixel} sample(s) per pixel");
        if (precision > attributes.BitsAllocated)
            throw InvalidImage.Error(sourceName,
                $"DICOM {codec} frame has {precision}-bit samples, more than Bits Allocated ({attributes.BitsAllocated})");
    }
}
