using System.Buffers.Binary;

namespace ManagedClip.Imaging;

/// <summary>
/// Rejects truncated PNG and JPEG files. ImageSharp decodes a cut-off file without complaint (the missing rows
/// come out black or grey), while Pillow raises "image file is truncated"; a silently half-black image would
/// give a wrong embedding, so these structural checks run before decoding.
/// </summary>
internal static class TruncationCheck
{
    /// <summary>Returns a description of the damage, or null if the file is structurally complete.</summary>
    public static string? FindPngDamage(ReadOnlySpan<byte> png)
    {
        // Chunks: 4-byte big-endian length, 4-byte type, data, 4-byte CRC; the last one is IEND.
        int position = 8;
        while (position + 8 <= png.Length)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png[position..]);
            var type = System.Text.Encoding.ASCII.GetString(png.Slice(position + 4, 4));
            long remaining = png.Length - position - 12L;
            if (length > remaining)
                return $"truncated PNG: chunk '{type}' at byte {position} declares {length} bytes but only {Math.Max(remaining, 0)} follow";
            if (type == "IEND") return null;
            position += 12 + (int)length;
        }
        return $"truncated PNG: the file ends after {png.Length} bytes without an IEND chunk";
    }

    /// <summary>Returns a description of the damage, or null if an end-of-image marker follows the last scan.</summary>
    public static string? FindJpegDamage(ReadOnlySpan<byte> jpeg)
    {
        // Entropy-coded data never contains FF DA or FF D9 (an FF data byte is stuffed with 00), so the last
        // start-of-scan marker belongs to the main image's last scan and a complete file has EOI after it.
        int lastScan = jpeg.LastIndexOf([(byte)0xFF, (byte)0xDA]);
        if (lastScan < 0) return "truncated JPEG: no start-of-scan (image data) marker";
        if (jpeg[lastScan..].IndexOf([(byte)0xFF, (byte)0xD9]) < 0)
            return $"truncated JPEG: the file ends after {jpeg.Length} bytes without an end-of-image marker";
        return null;
    }
}
