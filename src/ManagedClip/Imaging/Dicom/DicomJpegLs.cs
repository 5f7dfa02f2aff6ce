using ManagedClip.Imaging.JpegLs;

namespace ManagedClip.Imaging.Dicom;

/// <summary>
/// JPEG-LS frames of DICOM (PS3.5 A.4.3): Lossless (.4.80) and Near-Lossless (.4.81), each frame one JPEG-LS stream,
/// decoded by <see cref="JpegLsDecoder"/>. Components come out as stored (RGB or YBR_FULL planes, interleaved); the
/// rendering step applies the colour rule.
/// </summary>
/// <remarks>
/// Signed data (Pixel Representation 1) is coded as the unsigned Bits Stored-bit pattern of the two's complement
/// value, so the decoded samples go through the same Bits Stored field as native cells: the low Bits Stored bits,
/// sign-extended.
/// </remarks>
internal static class DicomJpegLs
{
    /// <summary>Decodes one frame into stored values <c>[rows, columns, samples]</c>.</summary>
    public static int[] DecodeFrame(ReadOnlySpan<byte> frame, DicomImageAttributes attributes, string sourceName, long maxPixels)
    {
        var image = JpegLsDecoder.Decode(frame, sourceName, maxPixels);
        DicomJpeg.CheckAgainstDataSet("JPEG-LS", image.Width, image.Height, image.Components, image.Precision, attributes, sourceName);

        // The decoded samples are the stored values: the field is the low Bits Stored bits.
        var field = new StoredValueField(attributes, attributes.BitsStored - 1);
        var values = new int[attributes.ValueCount]; // [rows, columns, samples]
        for (int i = 0; i < values.Length; i++) values[i] = field.Extract(image.Samples[i]);
        return values;
    }
}
