namespace ManagedClip.Imaging.Dicom;

/// <summary>One decoded frame: the checked attributes and the stored values <c>[rows, columns, samples]</c>.</summary>
internal sealed record DicomFrame(DicomImageAttributes Attributes, int[] Values);

/// <summary>
/// DICOM file → one frame → the 8-bit image the model sees. The steps, each in its own type:
/// <code>
/// DicomFile.Open                preamble, File Meta, transfer syntax; inflate a deflated data set (capped)
/// DicomDataSet.Parse            the elements up to Pixel Data; sequences skipped (nesting capped)
/// DicomImageAttributes.From     Image Pixel module, LUTs, window; sizes checked against the pixel limit
/// frame                         native → NativePixelData; encapsulated → EncapsulatedPixelData, then
///                               RleLossless, the JPEG decoder or the JPEG-LS decoder
/// DicomRendering.Render         Modality LUT, VOI, MONOCHROME1, rounding; colour spaces → mode L or RGB
/// </code>
/// </summary>
internal static class DicomImageReader
{
    // Bytes sampled to recognise a DICOM file without a Part 10 header.
    private const int ProbeLength = 4096;

    /// <summary>Whether <paramref name="data"/> looks like DICOM (Part 10, or a bare data set).</summary>
    public static bool IsDicom(ReadOnlySpan<byte> data) => DicomFile.LooksLikeDicom(data[..Math.Min(data.Length, ProbeLength)]);

    /// <summary>
    /// Whether the file at <paramref name="path"/> is a DICOM image file by content (its first 4 KB); the media
    /// directory (named DICOMDIR by PS3.10) is not. Unreadable files are not. Used to pick files without an extension.
    /// </summary>
    public static bool IsDicomImageFile(string path)
    {
        if (string.Equals(Path.GetFileName(path), "DICOMDIR", StringComparison.OrdinalIgnoreCase)) return false;
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
            var head = new byte[ProbeLength];
            int length = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            return DicomFile.LooksLikeDicom(head.AsSpan(0, length));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Decodes frame <paramref name="frame"/> (zero-based) and renders it.</summary>
    /// <exception cref="InvalidDataException">Damaged, unsupported, over the pixel limit, or no such frame.</exception>
    public static NativeImage Decode(ReadOnlySpan<byte> file, string sourceName, long maxPixels, int frame = 0)
    {
        var decoded = ReadFrame(file, sourceName, maxPixels, frame);
        return DicomRendering.Render(decoded.Attributes, decoded.Values, sourceName);
    }

    /// <summary>The stored values of frame <paramref name="frame"/>, before rendering.</summary>
    public static DicomFrame ReadFrame(ReadOnlySpan<byte> file, string sourceName, long maxPixels, int frame = 0)
    {
        if (frame < 0) throw InvalidImage.Error(sourceName, $"frame {frame} does not exist (frames are numbered from 0)");
        var dicom = DicomFile.Open(file, sourceName, MaxInflatedBytes(maxPixels));
        var reader = dicom.CreateReader(sourceName);
        var dataSet = DicomDataSet.Parse(ref reader, sourceName);
        var attributes = DicomImageAttributes.From(dataSet, dicom.Syntax, sourceName, maxPixels);
        if (frame >= attributes.Frames)
            throw InvalidImage.Error(sourceName, $"frame {frame} does not exist: the DICOM file has {attributes.Frames} frame(s), numbered from 0");

        var pixels = dataSet.Pixels!.Value;
        var syntax = dicom.Syntax;
        if (syntax.Pixels == PixelEncoding.Native)
        {
            if (pixels.Length == DicomElementReader.UndefinedLength)
                throw InvalidImage.Error(sourceName, $"damaged DICOM file: native Pixel Data with an undefined length in {syntax.Name}");
            var value = dicom.DataSet.Slice(pixels.Offset, (int)pixels.Length);
            bool wordSwapped = !syntax.LittleEndian && pixels.Vr == ValueRepresentations.OW && attributes.BitsAllocated == 8;
            return new DicomFrame(attributes, NativePixelData.ReadFrame(value, attributes, frame, syntax.LittleEndian, wordSwapped, sourceName));
        }

        var extendedOffsets = dataSet[DicomTags.ExtendedOffsetTable]?.UInt64s;
        var encapsulated = EncapsulatedPixelData.Read(ref reader, pixels, extendedOffsets, sourceName);
        bool jpeg = syntax.Pixels is PixelEncoding.JpegLossy or PixelEncoding.JpegLossless or PixelEncoding.JpegLs; // streams end at EOI
        var frameBytes = encapsulated.FrameBytes(dicom.DataSet, frame, attributes.Frames, endsAtEoi: jpeg);
        var values = syntax.Pixels switch
        {
            PixelEncoding.EncapsulatedNative => NativePixelData.ReadFrame(frameBytes, attributes with { Frames = 1 }, 0, true, false, sourceName),
            PixelEncoding.Rle => RleLossless.DecodeFrame(frameBytes, attributes, sourceName),
            PixelEncoding.JpegLs => DicomJpegLs.DecodeFrame(frameBytes, attributes, sourceName, maxPixels),
            _ => DicomJpeg.DecodeFrame(frameBytes, attributes, sourceName, maxPixels),
        };
        return new DicomFrame(attributes, values);
    }

    /// <summary>
    /// The largest inflated data set accepted: one frame at the pixel limit (3 samples of 2 bytes) plus 16 MiB for
    /// the other attributes. A deflate bomb stops there instead of filling memory.
    /// </summary>
    internal static long MaxInflatedBytes(long maxPixels) => Math.Min(Array.MaxLength, 6 * maxPixels + (16L << 20));
}
