using System.Buffers.Binary;

namespace ManagedClip.Tests.Imaging.Jpeg;

/// <summary>Edits the header segments of a JPEG file (before its first scan) to make damaged or unusual files for tests.</summary>
internal static class JpegEditor
{
    /// <summary>A marker segment: its marker code, the offset of its FF byte, and its total size (marker + length + payload).</summary>
    public readonly record struct Segment(int Marker, int Offset, int Size);

    /// <summary>The segments from after SOI up to and including the first SOS (whose size covers only its header).</summary>
    public static List<Segment> HeaderSegments(byte[] jpeg)
    {
        var segments = new List<Segment>();
        int p = 2;
        while (p + 4 <= jpeg.Length)
        {
            Assert.Equal(0xFF, jpeg[p]);
            int marker = jpeg[p + 1];
            if (marker == 0xFF)
            {
                p++; // fill byte
                continue;
            }
            int size = 2 + BinaryPrimitives.ReadUInt16BigEndian(jpeg.AsSpan(p + 2));
            segments.Add(new Segment(marker, p, size));
            if (marker == 0xDA) break;
            p += size;
        }
        return segments;
    }

    public static Segment First(byte[] jpeg, int marker) => HeaderSegments(jpeg).First(s => s.Marker == marker);

    /// <summary>The frame header (any SOFn).</summary>
    public static Segment Frame(byte[] jpeg) => HeaderSegments(jpeg).First(s => s.Marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC);

    /// <summary>The file without every segment with this marker.</summary>
    public static byte[] RemoveAll(byte[] jpeg, int marker)
    {
        var result = jpeg.ToList();
        foreach (var segment in HeaderSegments(jpeg).Where(s => s.Marker == marker).OrderByDescending(s => s.Offset))
            result.RemoveRange(segment.Offset, segment.Size);
        return result.ToArray();
    }

    /// <summary>The file with <paramref name="segment"/> (marker bytes included) inserted before the first segment with <paramref name="before"/>.</summary>
    public static byte[] InsertBefore(byte[] jpeg, int before, byte[] segment)
    {
        int offset = First(jpeg, before).Offset;
        return [.. jpeg.AsSpan(0, offset), .. segment, .. jpeg.AsSpan(offset)];
    }

    /// <summary>A copy with the frame header's width and height replaced.</summary>
    public static byte[] WithSize(byte[] jpeg, int width, int height)
    {
        var copy = (byte[])jpeg.Clone();
        int sof = Frame(jpeg).Offset;
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(sof + 5), (ushort)height);
        BinaryPrimitives.WriteUInt16BigEndian(copy.AsSpan(sof + 7), (ushort)width);
        return copy;
    }

    /// <summary>A copy with component <paramref name="index"/>'s sampling factors replaced.</summary>
    public static byte[] WithSampling(byte[] jpeg, int index, int h, int v)
    {
        var copy = (byte[])jpeg.Clone();
        copy[Frame(jpeg).Offset + 10 + 3 * index + 1] = (byte)((h << 4) | v);
        return copy;
    }

    /// <summary>
    /// For each scan, the offset where its entropy-coded data ends: the next marker that is not RSTn (a cut there
    /// keeps whole scans).
    /// </summary>
    public static List<int> ScanDataEnds(byte[] jpeg)
    {
        var ends = new List<int>();
        int p = 2;
        while (p + 1 < jpeg.Length)
        {
            if (jpeg[p] != 0xFF || jpeg[p + 1] == 0xFF)
            {
                p++;
                continue;
            }
            int marker = jpeg[p + 1];
            if (marker == 0xD9) break;
            int length = BinaryPrimitives.ReadUInt16BigEndian(jpeg.AsSpan(p + 2));
            p += 2 + length;
            if (marker != 0xDA) continue;
            while (p + 1 < jpeg.Length && !(jpeg[p] == 0xFF && jpeg[p + 1] is not (0x00 or 0xFF) and not (>= 0xD0 and <= 0xD7))) p++;
            ends.Add(p);
        }
        return ends;
    }

    /// <summary>Offsets of every restart marker (FF D0..D7) in the file's entropy-coded data.</summary>
    public static List<int> RestartMarkers(byte[] jpeg)
    {
        int start = First(jpeg, 0xDA) is var sos ? sos.Offset + sos.Size : 0;
        var offsets = new List<int>();
        for (int p = start; p + 1 < jpeg.Length; p++)
        {
            if (jpeg[p] == 0xFF && jpeg[p + 1] is >= 0xD0 and <= 0xD7) offsets.Add(p);
        }
        return offsets;
    }
}
