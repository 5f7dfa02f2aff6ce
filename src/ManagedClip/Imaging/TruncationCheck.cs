using System.Buffers.Binary;

namespace ManagedClip.Imaging;

/// <summary>
/// Rejects truncated PNG files. ImageSharp decodes a cut-off file without complaint (the missing rows come out
/// black), while Pillow raises "image file is truncated"; a silently half-black image would give a wrong embedding,
/// so this structural check runs before decoding. (JPEG truncation is the JPEG decoder's own check.)
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
}
