namespace ManagedClip.Imaging.Dicom;

/// <summary>JPEG frames of DICOM (baseline, extended 12-bit, lossless): wired to the JPEG decoder when it lands.</summary>
internal static class DicomJpeg
{
    public static int[] DecodeFrame(ReadOnlySpan<byte> frame, DicomImageAttributes attributes, string sourceName, long maxPixels) =>
        throw InvalidImage.Error(sourceName, $"DICOM pixel data in {attributes.Syntax} cannot be decoded yet");
}
