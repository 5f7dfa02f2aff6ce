namespace ManagedClip.Imaging.Dicom;

/// <summary>How the Pixel Data of a transfer syntax is stored (PS3.5 §8 and Annex A).</summary>
internal enum PixelEncoding
{
    /// <summary>Native: frames one after another, samples as Bits Allocated cells.</summary>
    Native,

    /// <summary>Encapsulated, but each frame's fragments hold native (uncompressed) bytes (PS3.5 A.4.11, .1.2.1.98).</summary>
    EncapsulatedNative,

    /// <summary>RLE Lossless (PS3.5 Annex G): one fragment per frame, a byte plane per segment.</summary>
    Rle,

    /// <summary>JPEG Baseline (process 1) or Extended (processes 2 and 4): lossy DCT, 8 or 12 bits.</summary>
    JpegLossy,

    /// <summary>JPEG Lossless (process 14, any predictor, or selection value 1).</summary>
    JpegLossless,

    /// <summary>JPEG-LS (ITU-T T.87), lossless (.4.80) or near-lossless (.4.81).</summary>
    JpegLs,

    /// <summary>A syntax whose pixel data ManagedClip cannot decode (JPEG 2000, video, …).</summary>
    Unsupported,
}

/// <summary>
/// A DICOM transfer syntax (PS3.5 §10, PS3.6 Annex A): how the data set is encoded (VR explicit or implicit, byte
/// order, deflate) and how the Pixel Data is. Only the syntaxes a reader meets are listed; any other UID is named
/// in the refusal.
/// </summary>
internal sealed record TransferSyntax(string Uid, string Name, bool ExplicitVr, bool LittleEndian, bool Deflated, PixelEncoding Pixels)
{
    public static readonly TransferSyntax ImplicitVrLittleEndian = new("1.2.840.10008.1.2", "Implicit VR Little Endian", false, true, false, PixelEncoding.Native);
    public static readonly TransferSyntax ExplicitVrLittleEndian = new("1.2.840.10008.1.2.1", "Explicit VR Little Endian", true, true, false, PixelEncoding.Native);
    public static readonly TransferSyntax ExplicitVrBigEndian = new("1.2.840.10008.1.2.2", "Explicit VR Big Endian", true, false, false, PixelEncoding.Native);

    private static readonly Dictionary<string, TransferSyntax> Known = new[]
    {
        ImplicitVrLittleEndian,
        ExplicitVrLittleEndian,
        ExplicitVrBigEndian,
        new("1.2.840.10008.1.2.1.99", "Deflated Explicit VR Little Endian", true, true, true, PixelEncoding.Native),
        new("1.2.840.10008.1.2.1.98", "Encapsulated Uncompressed Explicit VR Little Endian", true, true, false, PixelEncoding.EncapsulatedNative),
        new("1.2.840.10008.1.2.5", "RLE Lossless", true, true, false, PixelEncoding.Rle),
        new("1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", true, true, false, PixelEncoding.JpegLossy),
        new("1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", true, true, false, PixelEncoding.JpegLossy),
        new("1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", true, true, false, PixelEncoding.JpegLossless),
        new("1.2.840.10008.1.2.4.70", "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, Selection Value 1)", true, true, false, PixelEncoding.JpegLossless),
        new("1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", true, true, false, PixelEncoding.JpegLs),
        new("1.2.840.10008.1.2.4.81", "JPEG-LS Near-Lossless", true, true, false, PixelEncoding.JpegLs),
        Refused("1.2.840.10008.1.2.4.90", "JPEG 2000 Lossless"),
        Refused("1.2.840.10008.1.2.4.91", "JPEG 2000"),
        Refused("1.2.840.10008.1.2.4.92", "JPEG 2000 Part 2 Multi-component Lossless"),
        Refused("1.2.840.10008.1.2.4.93", "JPEG 2000 Part 2 Multi-component"),
        Refused("1.2.840.10008.1.2.4.94", "JPIP Referenced"),
        Refused("1.2.840.10008.1.2.4.95", "JPIP Referenced Deflate"),
        Refused("1.2.840.10008.1.2.4.201", "High-Throughput JPEG 2000 Lossless"),
        Refused("1.2.840.10008.1.2.4.202", "High-Throughput JPEG 2000 with RPCL Options Lossless"),
        Refused("1.2.840.10008.1.2.4.203", "High-Throughput JPEG 2000"),
        Refused("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level"),
        Refused("1.2.840.10008.1.2.4.101", "MPEG2 Main Profile / High Level"),
        Refused("1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile / Level 4.1"),
        Refused("1.2.840.10008.1.2.4.103", "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1"),
        Refused("1.2.840.10008.1.2.4.104", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video"),
        Refused("1.2.840.10008.1.2.4.105", "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video"),
        Refused("1.2.840.10008.1.2.4.106", "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2"),
        Refused("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1"),
        Refused("1.2.840.10008.1.2.4.108", "HEVC/H.265 Main 10 Profile / Level 5.1"),
        Refused("1.2.840.10008.1.2.4.110", "JPEG XL Lossless"),
        Refused("1.2.840.10008.1.2.4.111", "JPEG XL JPEG Recompression"),
        Refused("1.2.840.10008.1.2.4.112", "JPEG XL"),
        Refused("1.2.840.10008.1.2.6.1", "RFC 2557 MIME encapsulation"),
        Refused("1.2.840.10008.1.2.6.2", "XML Encoding"),
    }.ToDictionary(syntax => syntax.Uid);

    // Compressed syntaxes are all Explicit VR Little Endian data sets with encapsulated Pixel Data.
    private static TransferSyntax Refused(string uid, string name) => new(uid, name, true, true, false, PixelEncoding.Unsupported);

    /// <summary>The syntax named by <paramref name="uid"/>, or null for a UID not in the table.</summary>
    public static TransferSyntax? Find(string uid) => Known.GetValueOrDefault(uid);

    /// <summary>Whether the Pixel Data is encapsulated (fragments in items) rather than native.</summary>
    public bool Encapsulated => Pixels != PixelEncoding.Native;

    /// <summary>"JPEG 2000 Lossless (1.2.840.10008.1.2.4.90)", for messages.</summary>
    public override string ToString() => $"{Name} ({Uid})";
}
