using System.Text;

namespace ManagedClip.Imaging;

/// <summary>
/// Says in words what a file that ImageSharp cannot read seems to be, so the error can tell the user
/// (e.g. "a PDF document" rather than "unknown format"). Only used to word messages; decoding goes by content.
/// </summary>
internal static class ContentSniffer
{
    public static string Describe(ReadOnlySpan<byte> data)
    {
        if (data.StartsWith("%PDF"u8)) return "a PDF document";
        if (data.Length >= 12 && data.Slice(4, 4).SequenceEqual("ftyp"u8))
            return $"an ISO media file (brand '{Encoding.ASCII.GetString(data.Slice(8, 4))}', e.g. HEIC/AVIF), which is not supported";
        if (data.StartsWith((ReadOnlySpan<byte>)[0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50]) || data.StartsWith((ReadOnlySpan<byte>)[0xFF, 0x4F, 0xFF, 0x51]))
            return "a JPEG 2000 file, which is not supported";
        if (data.StartsWith((ReadOnlySpan<byte>)[0x1F, 0x8B])) return "gzip-compressed data";
        if (data.StartsWith("PK"u8)) return "a ZIP archive";
        if (LooksLikeText(data))
        {
            var start = Encoding.UTF8.GetString(data[..Math.Min(data.Length, 24)]).ReplaceLineEndings(" ");
            return $"text (starts \"{start}\")";
        }
        return "unrecognised binary data (first bytes " + Convert.ToHexString(data[..Math.Min(data.Length, 8)]) + ")";
    }

    private static bool LooksLikeText(ReadOnlySpan<byte> data)
    {
        var head = data[..Math.Min(data.Length, 512)];
        foreach (byte b in head)
        {
            if (b < 0x09 || (b > 0x0D && b < 0x20 && b != 0x1B)) return false;
        }
        return head.Length > 0;
    }
}
