namespace ManagedClip.Imaging.Jpeg;

/// <summary>What <see cref="JpegDecoder.Decode"/> returns.</summary>
internal enum JpegColorOutput
{
    /// <summary>
    /// What <c>PIL.Image.open</c> gives (Pillow 9.4 on libjpeg-turbo 2.1.5): 1 component → L, 3 → RGB (YCbCr
    /// converted with libjpeg's fixed-point tables unless the file is RGB), 4 → CMYK with Pillow's inversion
    /// (Pillow reads CMYK as Adobe's inverted "CMYK;I"). Only 8-bit DCT files: Pillow opens nothing else.
    /// </summary>
    Pillow,

    /// <summary>The upsampled components as stored: no colour conversion, no inversion (what DICOM wants).</summary>
    Raw,
}

/// <summary>Colour space of the stored components, decided as libjpeg-turbo's <c>jdapimin.c</c> does.</summary>
internal enum JpegColorSpace
{
    /// <summary>2 or more than 4 components: no colour interpretation.</summary>
    Unknown,
    Grayscale,
    YCbCr,
    Rgb,
    Cmyk,
    Ycck,
}

/// <summary>The coding process named by the frame's SOF marker.</summary>
internal enum JpegProcess
{
    /// <summary>SOF0: 8-bit DCT, Huffman, at most 2 tables of each kind.</summary>
    Baseline,

    /// <summary>SOF1 (Huffman) or SOF9 (arithmetic): sequential DCT, 8 or 12 bits.</summary>
    ExtendedSequential,

    /// <summary>SOF2 (Huffman) or SOF10 (arithmetic): progressive DCT.</summary>
    Progressive,

    /// <summary>SOF3 (Huffman) or SOF11 (arithmetic): lossless predictive coding (T.81 Annex H, "process 14").</summary>
    Lossless,
}

/// <summary>
/// A decoded JPEG frame. Samples are interleaved <c>[Height, Width, Components]</c>, in <see cref="Bytes"/> when
/// <see cref="Precision"/> ≤ 8 and in <see cref="Samples"/> otherwise (exactly one of the two is set).
/// </summary>
internal sealed class JpegImage
{
    internal JpegImage(int width, int height, int components, int precision, byte[]? bytes, ushort[]? samples,
        JpegColorSpace colorSpace, JpegProcess process, bool arithmetic)
    {
        Width = width;
        Height = height;
        Components = components;
        Precision = precision;
        Bytes = bytes;
        Samples = samples;
        ColorSpace = colorSpace;
        Process = process;
        Arithmetic = arithmetic;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Values per pixel in <see cref="Bytes"/> or <see cref="Samples"/>.</summary>
    public int Components { get; }

    /// <summary>Bits per sample: 8 or 12 for DCT frames, 2..16 for lossless ones.</summary>
    public int Precision { get; }

    /// <summary>Precision ≤ 8: the pixels, <c>[Height, Width, Components]</c>.</summary>
    public byte[]? Bytes { get; }

    /// <summary>Precision &gt; 8: the pixels, <c>[Height, Width, Components]</c>.</summary>
    public ushort[]? Samples { get; }

    /// <summary>Colour space of the stored components (before any conversion).</summary>
    public JpegColorSpace ColorSpace { get; }

    /// <summary>The frame's coding process.</summary>
    public JpegProcess Process { get; }

    /// <summary>True for arithmetic entropy coding, false for Huffman.</summary>
    public bool Arithmetic { get; }

    public override string ToString() =>
        $"{Width}x{Height}x{Components} {Precision}-bit {Process}{(Arithmetic ? " arithmetic" : "")} {ColorSpace}";
}
