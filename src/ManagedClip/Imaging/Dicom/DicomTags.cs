namespace ManagedClip.Imaging.Dicom;

/// <summary>
/// The attributes the reader uses (PS3.6 data dictionary), as <c>group &lt;&lt; 16 | element</c>. Everything else in
/// a file is skipped.
/// </summary>
internal static class DicomTags
{
    // File Meta Information (PS3.10 §7.1), always explicit VR little endian.
    public const uint TransferSyntaxUid = 0x0002_0010;

    public const uint SopClassUid = 0x0008_0016;

    // Image Pixel module (PS3.3 C.7.6.3) and Multi-frame module (C.7.6.6).
    public const uint SamplesPerPixel = 0x0028_0002;
    public const uint PhotometricInterpretation = 0x0028_0004;
    public const uint PlanarConfiguration = 0x0028_0006;
    public const uint NumberOfFrames = 0x0028_0008;
    public const uint Rows = 0x0028_0010;
    public const uint Columns = 0x0028_0011;
    public const uint BitsAllocated = 0x0028_0100;
    public const uint BitsStored = 0x0028_0101;
    public const uint HighBit = 0x0028_0102;
    public const uint PixelRepresentation = 0x0028_0103;

    // Modality LUT module (C.11.1) and VOI LUT module (C.11.2).
    public const uint WindowCenter = 0x0028_1050;
    public const uint WindowWidth = 0x0028_1051;
    public const uint RescaleIntercept = 0x0028_1052;
    public const uint RescaleSlope = 0x0028_1053;
    public const uint VoiLutFunction = 0x0028_1056;
    public const uint ModalityLutSequence = 0x0028_3000;
    public const uint LutDescriptor = 0x0028_3002;
    public const uint LutData = 0x0028_3006;
    public const uint VoiLutSequence = 0x0028_3010;

    // Pixel data (PS3.5 §8, A.4).
    public const uint ExtendedOffsetTable = 0x7FE0_0001;
    public const uint ExtendedOffsetTableLengths = 0x7FE0_0002;
    public const uint FloatPixelData = 0x7FE0_0008;
    public const uint DoubleFloatPixelData = 0x7FE0_0009;
    public const uint PixelData = 0x7FE0_0010;

    /// <summary>"(7FE0,0010)"</summary>
    public static string Format(uint tag) => $"({tag >> 16:X4},{tag & 0xFFFF:X4})";

    /// <summary>"Rows (0028,0010)" for the attributes above, the bare tag otherwise.</summary>
    public static string Describe(uint tag) => Names.TryGetValue(tag, out var name) ? $"{name} {Format(tag)}" : Format(tag);

    private static readonly Dictionary<uint, string> Names = new()
    {
        [TransferSyntaxUid] = "Transfer Syntax UID",
        [SopClassUid] = "SOP Class UID",
        [SamplesPerPixel] = "Samples per Pixel",
        [PhotometricInterpretation] = "Photometric Interpretation",
        [PlanarConfiguration] = "Planar Configuration",
        [NumberOfFrames] = "Number of Frames",
        [Rows] = "Rows",
        [Columns] = "Columns",
        [BitsAllocated] = "Bits Allocated",
        [BitsStored] = "Bits Stored",
        [HighBit] = "High Bit",
        [PixelRepresentation] = "Pixel Representation",
        [WindowCenter] = "Window Center",
        [WindowWidth] = "Window Width",
        [RescaleIntercept] = "Rescale Intercept",
        [RescaleSlope] = "Rescale Slope",
        [VoiLutFunction] = "VOI LUT Function",
        [ModalityLutSequence] = "Modality LUT Sequence",
        [LutDescriptor] = "LUT Descriptor",
        [LutData] = "LUT Data",
        [VoiLutSequence] = "VOI LUT Sequence",
        [ExtendedOffsetTable] = "Extended Offset Table",
        [ExtendedOffsetTableLengths] = "Extended Offset Table Lengths",
        [FloatPixelData] = "Float Pixel Data",
        [DoubleFloatPixelData] = "Double Float Pixel Data",
        [PixelData] = "Pixel Data",
    };

    /// <summary>Top-level attributes whose values the reader keeps.</summary>
    public static bool IsKept(uint tag) => tag is SopClassUid or ExtendedOffsetTable or ExtendedOffsetTableLengths
        || (tag >> 16 == 0x0028 && Names.ContainsKey(tag) && tag is not (ModalityLutSequence or VoiLutSequence or LutDescriptor or LutData));
}
