using System.Buffers.Binary;

namespace ManagedClip.Imaging;

/// <summary>
/// The first image file directory (IFD0) of a classic TIFF (TIFF 6.0, section 2): what Pillow 9.4 decides the mode
/// from (TiffImagePlugin <c>OPEN_INFO</c>: photometric interpretation, bits per sample, extra samples) and where the
/// strips or tiles lie, so a file cut short is refused like Pillow's "image file is truncated". ImageSharp decodes
/// the pixels; this reads only the few tags it needs, every offset checked against the file.
/// </summary>
internal sealed class TiffHeader
{
    private const int MaxEntries = 4096;          // a real IFD has a few dozen entries
    private const int MaxValues = 1 << 20;        // strips or tiles per image

    private readonly bool littleEndian;
    private readonly Dictionary<int, int> entries; // tag → position of its 12-byte entry

    private TiffHeader(int photometric, int[] bitsPerSample, int[] extraSamples, List<(long Offset, long Count)> segments,
        int predictor, bool littleEndian, Dictionary<int, int> entries)
    {
        Photometric = photometric;
        BitsPerSample = bitsPerSample;
        ExtraSamples = extraSamples;
        Segments = segments;
        Predictor = predictor;
        this.littleEndian = littleEndian;
        this.entries = entries;
    }

    /// <summary>Predictor: 1 none, 2 horizontal differencing.</summary>
    public int Predictor { get; }

    /// <summary>PhotometricInterpretation: 0 WhiteIsZero, 1 BlackIsZero, 2 RGB, 3 palette, 5 CMYK, 6 YCbCr…</summary>
    public int Photometric { get; }

    /// <summary>Bits of each sample, one entry per sample.</summary>
    public int[] BitsPerSample { get; }

    /// <summary>ExtraSamples: 0 unspecified, 1 associated alpha, 2 unassociated alpha.</summary>
    public int[] ExtraSamples { get; }

    /// <summary>The strips' (or tiles') byte ranges in the file.</summary>
    public List<(long Offset, long Count)> Segments { get; }

    /// <summary>
    /// The mode Pillow opens this layout in, for the layouts whose mode this port reproduces; null for the rest
    /// (the decoder's metadata decides then).
    /// </summary>
    public PillowMode? Mode => (Photometric, BitsPerSample, ExtraSamples) switch
    {
        (0 or 1, [1], []) => PillowMode.Bilevel,
        (0 or 1, [2 or 4 or 8], []) => PillowMode.L,
        (0 or 1, [16], []) => PillowMode.I, // Pillow's I;16, resized here as I
        (1, [8, 8], [2]) => PillowMode.LA,
        (2 or 6, [8, 8, 8] or [16, 16, 16], []) => PillowMode.Rgb,
        (2, [8, 8, 8, 8], [0]) => PillowMode.Rgb, // RGBX: the fourth sample is padding
        (2, [8, 8, 8, 8] or [16, 16, 16, 16], [] or [1] or [2] or [999]) => PillowMode.Rgba,
        (3, [1 or 2 or 4 or 8], []) => PillowMode.P,
        _ => null,
    };

    /// <summary>True when every sample has at most 8 bits (the image decodes into 8-bit pixels without loss).</summary>
    public bool IsEightBit => BitsPerSample.All(b => b <= 8);

    /// <summary>Reads IFD0, or returns null when the structure is not a classic TIFF this reader understands.</summary>
    public static TiffHeader? Read(ReadOnlySpan<byte> tiff)
    {
        if (tiff.Length < 8) return null;
        bool little = tiff[0] == (byte)'I' && tiff[1] == (byte)'I';
        if (!little && !(tiff[0] == (byte)'M' && tiff[1] == (byte)'M')) return null;
        var reader = new Reader(little);
        if (reader.U16(tiff, 2) != 42) return null; // 43 is BigTIFF
        long ifd = reader.U32(tiff, 4);
        if (ifd < 8 || ifd + 2 > tiff.Length) return null;
        int count = reader.U16(tiff, (int)ifd);
        if (count > MaxEntries || ifd + 2 + 12L * count > tiff.Length) return null;

        int photometric = -1, predictor = 1;
        int[] bits = [1], extra = [];
        var positions = new Dictionary<int, int>();
        long[] offsets = [], counts = [];
        for (int i = 0; i < count; i++)
        {
            int entry = (int)ifd + 2 + 12 * i;
            int tag = reader.U16(tiff, entry);
            positions[tag] = entry;
            switch (tag)
            {
                case 317: predictor = (int)(reader.Values(tiff, entry, 1)?.FirstOrDefault() ?? 1); break;
                case 258: bits = reader.Values(tiff, entry, 16)?.Select(v => (int)Math.Min(v, 64)).ToArray() ?? bits; break;
                case 262: photometric = (int)(reader.Values(tiff, entry, 1)?.FirstOrDefault() ?? -1); break;
                case 273 or 324: offsets = reader.Values(tiff, entry, MaxValues) ?? []; break;
                case 279 or 325: counts = reader.Values(tiff, entry, MaxValues) ?? []; break;
                case 338: extra = reader.Values(tiff, entry, 16)?.Select(v => (int)Math.Min(v, 1000)).ToArray() ?? []; break;
            }
        }
        var segments = new List<(long, long)>();
        for (int i = 0; i < Math.Min(offsets.Length, counts.Length); i++) segments.Add((offsets[i], counts[i]));
        return new TiffHeader(photometric, bits, extra, segments, predictor, little, positions);
    }

    /// <summary>
    /// The file of an LA image (two 8-bit samples per pixel) relabelled as an 8-bit grey image twice as wide, which
    /// ImageSharp 2.1 decodes (it has no two-sample layout) whatever the compression: the strips are the same bytes,
    /// grey and alpha alternating. Null when that reading would be wrong (a horizontal predictor differences each
    /// sample with its own channel) or the width does not fit the field.
    /// </summary>
    public byte[]? AsInterleavedGrey(ReadOnlySpan<byte> tiff)
    {
        if (Mode != PillowMode.LA || Predictor != 1) return null;
        var rowsFixed = WithRowsPerStripAtMostHeight(tiff);
        if (rowsFixed is not null) tiff = rowsFixed;
        if (!entries.TryGetValue(256, out int widthEntry) || !entries.TryGetValue(258, out int bitsEntry) || !entries.TryGetValue(277, out int samplesEntry))
            return null;
        var reader = new Reader(littleEndian);
        var patched = tiff.ToArray();
        int widthType = reader.U16(tiff, widthEntry + 2);
        long width = reader.Values(tiff, widthEntry, 1)?[0] ?? 0;
        if (widthType == 3 && 2 * width > ushort.MaxValue || widthType is not (3 or 4)) return null;
        WriteValue(patched, widthEntry, widthType, 2 * width);
        // BitsPerSample: one SHORT 8 (inline); SamplesPerPixel: 1; ExtraSamples: renamed to an unknown private tag.
        WriteShortEntry(patched, bitsEntry, 258, 8);
        WriteShortEntry(patched, samplesEntry, 277, 1);
        if (entries.TryGetValue(338, out int extraEntry)) WriteU16(patched, extraEntry, 65000);
        return patched;
    }

    private void WriteShortEntry(byte[] file, int entry, int tag, int value)
    {
        WriteU16(file, entry, tag);
        WriteU16(file, entry + 2, 3);
        WriteU32(file, entry + 4, 1);
        WriteU32(file, entry + 8, 0);
        WriteU16(file, entry + 8, value);
    }

    private void WriteValue(byte[] file, int entry, int type, long value)
    {
        WriteU32(file, entry + 8, 0);
        if (type == 3) WriteU16(file, entry + 8, (int)value);
        else WriteU32(file, entry + 8, value);
    }

    private void WriteU16(byte[] file, int at, int value)
    {
        if (littleEndian) BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(at), (ushort)value);
        else BinaryPrimitives.WriteUInt16BigEndian(file.AsSpan(at), (ushort)value);
    }

    private void WriteU32(byte[] file, int at, long value)
    {
        if (littleEndian) BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(at), (uint)value);
        else BinaryPrimitives.WriteUInt32BigEndian(file.AsSpan(at), (uint)value);
    }

    /// <summary>
    /// A copy of the file whose RowsPerStrip is at most the image height, or null when it already is. A larger value
    /// means "one strip" (the specification's default is 2³²−1), and Pillow reads it so; ImageSharp 2.1 sizes its strip
    /// buffer from it, so a 1 KB file claiming 67 million rows per strip would allocate gigabytes.
    /// </summary>
    public byte[]? WithRowsPerStripAtMostHeight(ReadOnlySpan<byte> tiff)
    {
        if (!entries.TryGetValue(278, out int rowsEntry) || !entries.TryGetValue(257, out int heightEntry)) return null;
        var reader = new Reader(littleEndian);
        long rows = reader.Values(tiff, rowsEntry, 1)?[0] ?? 0, height = reader.Values(tiff, heightEntry, 1)?[0] ?? 0;
        if (rows <= height || height <= 0) return null;
        var patched = tiff.ToArray();
        int type = reader.U16(tiff, rowsEntry + 2);
        if (type is not (3 or 4) || (type == 3 && height > ushort.MaxValue)) return null;
        WriteValue(patched, rowsEntry, type, height);
        return patched;
    }

    /// <summary>A description when the file ends before its first image directory does (the directory is often written last).</summary>
    public static string? FindDirectoryTruncation(ReadOnlySpan<byte> tiff)
    {
        if (tiff.Length < 8) return "truncated TIFF: image file is truncated (header)";
        bool little = tiff[0] == (byte)'I';
        var reader = new Reader(little);
        if (reader.U16(tiff, 2) != 42) return null;
        long ifd = reader.U32(tiff, 4);
        if (ifd + 2 > tiff.Length)
            return $"truncated TIFF: image file is truncated (its image directory at byte {ifd:N0} is past the end of the {tiff.Length:N0}-byte file)";
        long end = ifd + 2 + 12L * reader.U16(tiff, (int)ifd);
        return end > tiff.Length ? $"truncated TIFF: image file is truncated (its image directory runs past the end of the file)" : null;
    }

    /// <summary>A description of the damage when a strip or tile lies beyond the end of the file, else null.</summary>
    public string? FindTruncation(long fileLength)
    {
        foreach (var (offset, count) in Segments)
        {
            if (offset + count > fileLength)
                return $"truncated TIFF: image file is truncated (image data at byte {offset:N0} needs {count:N0} bytes, the file has {fileLength:N0})";
        }
        return null;
    }

    /// <summary>Byte-order-aware field access; every read is bounds-checked.</summary>
    private readonly struct Reader(bool little)
    {
        public int U16(ReadOnlySpan<byte> data, int at) =>
            little ? BinaryPrimitives.ReadUInt16LittleEndian(data[at..]) : BinaryPrimitives.ReadUInt16BigEndian(data[at..]);

        public long U32(ReadOnlySpan<byte> data, int at) =>
            little ? BinaryPrimitives.ReadUInt32LittleEndian(data[at..]) : BinaryPrimitives.ReadUInt32BigEndian(data[at..]);

        /// <summary>The BYTE/SHORT/LONG values of one 12-byte entry (inline or at its offset), or null if malformed.</summary>
        public long[]? Values(ReadOnlySpan<byte> data, int entry, int maxCount)
        {
            int type = U16(data, entry + 2);
            long count = U32(data, entry + 4);
            int size = type switch { 1 => 1, 3 => 2, 4 => 4, _ => 0 };
            if (size == 0 || count < 1 || count > maxCount) return null;
            long start = count * size <= 4 ? entry + 8 : U32(data, entry + 8);
            if (start + count * size > data.Length) return null;
            var values = new long[count];
            for (int i = 0; i < count; i++)
            {
                int at = (int)(start + i * size);
                values[i] = size switch { 1 => data[at], 2 => U16(data, at), _ => U32(data, at) };
            }
            return values;
        }
    }
}
