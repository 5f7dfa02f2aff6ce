using System.Buffers.Binary;

namespace ManagedClip.Imaging;

/// <summary>
/// Pillow 9.4 opens WebP as RGBA when libwebp's <c>WebPGetFeatures</c> reports alpha, else RGB. That flag comes
/// from the first chunk: VP8X's alpha bit, VP8L's alpha_is_used bit; a plain lossy VP8 chunk has none.
/// </summary>
internal static class WebpHeader
{
    public static PillowMode ReadMode(ReadOnlySpan<byte> webp)
    {
        // RIFF <size> WEBP, then the first chunk's four-character code and size at 12..20, its data at 20.
        if (webp.Length < 21) return PillowMode.Rgb;
        var chunk = webp.Slice(12, 4);
        if (chunk.SequenceEqual("VP8X"u8)) return (webp[20] & 0x10) != 0 ? PillowMode.Rgba : PillowMode.Rgb;
        if (chunk.SequenceEqual("VP8L"u8) && webp.Length >= 25)
        {
            // Signature byte 0x2F, then 14 bits width−1, 14 bits height−1, 1 bit alpha_is_used (bit 28).
            uint bits = BinaryPrimitives.ReadUInt32LittleEndian(webp[21..]);
            return ((bits >> 28) & 1) != 0 ? PillowMode.Rgba : PillowMode.Rgb;
        }
        return PillowMode.Rgb;
    }
}
