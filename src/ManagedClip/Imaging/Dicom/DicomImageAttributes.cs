namespace ManagedClip.Imaging.Dicom;

/// <summary>
/// A Modality or VOI lookup table (PS3.3 C.11.1, C.11.2): <see cref="EntryCount"/> entries, the first mapping the
/// input value <see cref="FirstMapped"/>, each an unsigned value of <see cref="Bits"/> significant bits.
/// </summary>
/// <param name="EntryCount">Entries used (the descriptor's first value; 0 there means 65536).</param>
/// <param name="FirstMapped">Input value of entry 0 (signed when the descriptor is SS).</param>
/// <param name="Bits">Bits per entry (descriptor's third value), 1..16.</param>
/// <param name="Data">LUT Data, at least <paramref name="EntryCount"/> entries.</param>
internal sealed record LookupTable(int EntryCount, int FirstMapped, int Bits, ushort[] Data)
{
    /// <summary><c>Data[clamp(floor(x) − first, 0, n − 1)]</c>.</summary>
    public ushort Map(double x)
    {
        double index = Math.Floor(x) - FirstMapped;
        return Data[index <= 0 ? 0 : index >= EntryCount - 1 ? EntryCount - 1 : (int)index];
    }
}

/// <summary>The Photometric Interpretations (PS3.3 C.7.6.3.1.2) the renderer accepts.</summary>
internal enum Photometric
{
    Monochrome1,
    Monochrome2,
    Rgb,
    YbrFull,
    YbrFull422,
}

/// <summary>
/// What decoding and rendering one frame needs, read from a data set and checked: the Image Pixel module
/// (PS3.3 C.7.6.3), Number of Frames, the Modality LUT (rescale or sequence) and the VOI LUT (window or sequence).
/// Every size is checked against the pixel limit here, before any pixel buffer exists.
/// </summary>
internal sealed record DicomImageAttributes
{
    public required TransferSyntax Syntax { get; init; }
    public required int Rows { get; init; }
    public required int Columns { get; init; }
    public required int SamplesPerPixel { get; init; }
    public required Photometric Photometric { get; init; }
    public required string PhotometricName { get; init; }
    public required int BitsAllocated { get; init; }
    public required int BitsStored { get; init; }
    public required int HighBit { get; init; }

    /// <summary>Pixel Representation 1: stored values are two's complement.</summary>
    public required bool Signed { get; init; }

    /// <summary>0: samples interleaved per pixel; 1: one plane per sample (native colour data only).</summary>
    public required int PlanarConfiguration { get; init; }

    public required int Frames { get; init; }

    /// <summary>Rescale Slope and Intercept: null when neither is present (defaults 1 and 0 otherwise).</summary>
    public required (double Slope, double Intercept)? Rescale { get; init; }

    public required LookupTable? ModalityLut { get; init; }
    public required LookupTable? VoiLut { get; init; }

    /// <summary>Window Center values (all of them; rendering uses the first). Empty when absent.</summary>
    public required double[] WindowCenters { get; init; }

    /// <summary>Window Width values. Empty when absent.</summary>
    public required double[] WindowWidths { get; init; }

    /// <summary>VOI LUT Function in upper case (LINEAR, LINEAR_EXACT, SIGMOID); LINEAR when absent.</summary>
    public required string VoiLutFunction { get; init; }

    public int PixelCount => Rows * Columns;

    /// <summary>Stored values of one frame: rows × columns × samples.</summary>
    public int ValueCount => Rows * Columns * SamplesPerPixel;

    /// <summary>Native bytes of one frame; YBR_FULL_422 keeps two samples per pixel (Y1 Y2 Cb Cr per pair).</summary>
    public long NativeFrameBytes =>
        (long)Rows * Columns * (Photometric == Photometric.YbrFull422 ? 2 : SamplesPerPixel) * (BitsAllocated / 8);

    /// <summary>Reads and checks the attributes of <paramref name="dataSet"/>.</summary>
    public static DicomImageAttributes From(DicomDataSet dataSet, TransferSyntax syntax, string sourceName, long maxPixels)
    {
        InvalidDataException Refuse(string problem) => InvalidImage.Error(sourceName, problem);

        if (dataSet.Pixels is not { } pixels)
        {
            string sopClass = dataSet[DicomTags.SopClassUid]?.Text ?? "";
            throw Refuse($"the DICOM file has no Pixel Data (7FE0,0010), so no image to read{(sopClass.Length > 0 ? $" (SOP Class UID {sopClass})" : "")}");
        }
        if (pixels.Tag != DicomTags.PixelData)
            throw Refuse($"DICOM {DicomTags.Describe(pixels.Tag)} (floating-point images such as parametric maps) is not supported");

        int rows = RequiredUInt16(dataSet, DicomTags.Rows, sourceName);
        int columns = RequiredUInt16(dataSet, DicomTags.Columns, sourceName);
        int bitsAllocated = RequiredUInt16(dataSet, DicomTags.BitsAllocated, sourceName);
        int samples = OptionalUInt16(dataSet, DicomTags.SamplesPerPixel) ?? 1;
        int bitsStored = OptionalUInt16(dataSet, DicomTags.BitsStored) ?? bitsAllocated;
        int highBit = OptionalUInt16(dataSet, DicomTags.HighBit) ?? bitsStored - 1;
        int representation = OptionalUInt16(dataSet, DicomTags.PixelRepresentation) ?? 0;
        int planar = OptionalUInt16(dataSet, DicomTags.PlanarConfiguration) ?? 0;

        if (rows == 0 || columns == 0) throw Refuse($"DICOM image of {columns}x{rows} pixels is empty");
        long pixelCount = (long)rows * columns;
        if (pixelCount > maxPixels)
            throw Refuse($"DICOM image of {columns}x{rows} = {pixelCount:N0} pixels exceeds the limit of {maxPixels:N0} pixels (refused before decoding)");
        if (bitsAllocated is not (8 or 16))
            throw Refuse($"DICOM Bits Allocated {bitsAllocated} is not supported (8 and 16 are){(bitsAllocated == 1 ? "; 1-bit data are segmentations or overlays, not images" : "")}");
        if (bitsStored < 1 || bitsStored > bitsAllocated || highBit < bitsStored - 1 || highBit >= bitsAllocated)
            throw Refuse($"DICOM Bits Stored {bitsStored} and High Bit {highBit} do not fit in Bits Allocated {bitsAllocated}");
        if (representation is not (0 or 1)) throw Refuse($"DICOM Pixel Representation {representation} is invalid (0 unsigned, 1 signed)");
        if (samples is not (1 or 3)) throw Refuse($"DICOM Samples per Pixel {samples} is not supported (1 and 3 are)");
        if (planar is not (0 or 1)) throw Refuse($"DICOM Planar Configuration {planar} is invalid (0 or 1)");

        string photometricName = dataSet[DicomTags.PhotometricInterpretation]?.Text.ToUpperInvariant() is { Length: > 0 } name
            ? name
            : samples == 1 ? "MONOCHROME2" : "RGB";
        var photometric = photometricName switch
        {
            "MONOCHROME1" => Photometric.Monochrome1,
            "MONOCHROME2" => Photometric.Monochrome2,
            "RGB" => Photometric.Rgb,
            "YBR_FULL" => Photometric.YbrFull,
            "YBR_FULL_422" => Photometric.YbrFull422,
            _ => throw Refuse($"DICOM Photometric Interpretation {photometricName} is not supported (MONOCHROME1, MONOCHROME2, RGB, YBR_FULL and YBR_FULL_422 are)"),
        };
        bool monochrome = photometric is Photometric.Monochrome1 or Photometric.Monochrome2;
        if (monochrome != (samples == 1))
            throw Refuse($"DICOM Photometric Interpretation {photometricName} with {samples} samples per pixel is contradictory");
        if (!monochrome && representation == 1) throw Refuse("DICOM colour pixels marked signed (Pixel Representation 1) are not supported");
        if (photometric is Photometric.YbrFull or Photometric.YbrFull422 && bitsStored != 8)
            throw Refuse($"DICOM {photometricName} with {bitsStored} bits stored is not supported (8 bits are)");
        if (photometric == Photometric.YbrFull422 && syntax.Pixels == PixelEncoding.Native && columns % 2 != 0)
            throw Refuse($"DICOM YBR_FULL_422 pixel data needs an even number of columns, found {columns}");

        long frames = dataSet[DicomTags.NumberOfFrames] is { } framesValue
            ? DicomNumbers.ParseFirstInteger(framesValue, DicomTags.NumberOfFrames, sourceName) ?? 1
            : 1;
        if (frames < 0 || frames > int.MaxValue) throw Refuse($"DICOM Number of Frames {frames} is invalid");
        if (frames == 0) frames = 1; // written by some encoders for single-frame images; pydicom reads it as 1 too

        (double, double)? rescale = null;
        var slope = DecimalsOrEmpty(dataSet, DicomTags.RescaleSlope, sourceName);
        var intercept = DecimalsOrEmpty(dataSet, DicomTags.RescaleIntercept, sourceName);
        if (slope.Length > 0 || intercept.Length > 0)
            rescale = (slope.Length > 0 ? slope[0] : 1.0, intercept.Length > 0 ? intercept[0] : 0.0);

        return new DicomImageAttributes
        {
            Syntax = syntax,
            Rows = rows,
            Columns = columns,
            SamplesPerPixel = samples,
            Photometric = photometric,
            PhotometricName = photometricName,
            BitsAllocated = bitsAllocated,
            BitsStored = bitsStored,
            HighBit = highBit,
            Signed = representation == 1,
            PlanarConfiguration = planar,
            Frames = (int)frames,
            Rescale = rescale,
            ModalityLut = ReadLut(dataSet.ModalityLut, "Modality LUT Sequence", representation == 1, sourceName),
            VoiLut = ReadLut(dataSet.VoiLut, "VOI LUT Sequence", representation == 1, sourceName),
            WindowCenters = DecimalsOrEmpty(dataSet, DicomTags.WindowCenter, sourceName),
            WindowWidths = DecimalsOrEmpty(dataSet, DicomTags.WindowWidth, sourceName),
            VoiLutFunction = dataSet[DicomTags.VoiLutFunction]?.Text.ToUpperInvariant() is { Length: > 0 } function ? function : "LINEAR",
        };
    }

    /// <summary>
    /// The LUT of a sequence's first item. Descriptor <c>[n, first, bits]</c>: n and bits are unsigned; first is
    /// signed when the descriptor's VR is SS (or, in implicit VR, when the pixels are signed, as pydicom decides).
    /// </summary>
    private static LookupTable? ReadLut(LutItem? item, string sequence, bool signedPixels, string sourceName)
    {
        if (item is null) return null;
        if (item.Descriptor is not { } descriptorValue || descriptorValue.Bytes.Length < 6)
            throw InvalidImage.Error(sourceName, $"DICOM {sequence} item has no valid LUT Descriptor (0028,3002)");
        if (item.Data is not { } dataValue)
            throw InvalidImage.Error(sourceName, $"DICOM {sequence} item has no LUT Data (0028,3006)");
        var descriptor = descriptorValue.UInt16s;
        int entries = descriptor[0] == 0 ? 65536 : descriptor[0];
        bool signedFirst = descriptorValue.Vr == ValueRepresentations.SS
                           || (descriptorValue.Vr is (0 or ValueRepresentations.UN) && signedPixels);
        int first = signedFirst ? (short)descriptor[1] : descriptor[1];
        int bits = descriptor[2];
        if (bits is < 1 or > 16)
            throw InvalidImage.Error(sourceName, $"DICOM {sequence} LUT Descriptor gives {bits} bits per entry (1 to 16 are valid)");
        var data = dataValue.UInt16s;
        if (data.Length < entries)
            throw InvalidImage.Error(sourceName, $"DICOM {sequence} LUT Data holds {data.Length:N0} entries but its descriptor gives {entries:N0}");
        return new LookupTable(entries, first, bits, data);
    }

    private static double[] DecimalsOrEmpty(DicomDataSet dataSet, uint tag, string sourceName) =>
        dataSet[tag] is { } value ? DicomNumbers.ParseDecimals(value, tag, sourceName) : [];

    private static int? OptionalUInt16(DicomDataSet dataSet, uint tag) =>
        dataSet[tag] is { Bytes.Length: >= 2 } value ? value.UInt16s[0] : null;

    private static int RequiredUInt16(DicomDataSet dataSet, uint tag, string sourceName) =>
        OptionalUInt16(dataSet, tag) ?? throw InvalidImage.Error(sourceName, $"DICOM {DicomTags.Describe(tag)} is missing, so the pixel data cannot be read");
}
