namespace ManagedClip.Imaging;

/// <summary>
/// Pillow's RGBA ⇄ RGBa and LA ⇄ La conversions (Convert.c <c>rgbA2rgba</c>, <c>rgba2rgbA</c>, <c>lA2la</c>,
/// <c>la2lA</c>), which <c>Image.resize</c> wraps around resampling so that colour under transparent pixels does
/// not bleed. Their integer rounding is part of the result: colour under alpha 0 becomes 0 and low-alpha colour
/// is quantised.
/// </summary>
internal static class PremultipliedAlpha
{
    /// <summary>Multiplies every colour byte by alpha/255 in place. <paramref name="pixels"/>: <c>[pixels, channels]</c>, alpha last.</summary>
    public static void Premultiply(Span<byte> pixels, int channels)
    {
        for (int p = 0; p + channels <= pixels.Length; p += channels)
        {
            int alpha = pixels[p + channels - 1];
            for (int c = 0; c < channels - 1; c++) pixels[p + c] = MultiplyDivide255(pixels[p + c], alpha);
        }
    }

    /// <summary>Divides every colour byte by alpha/255 in place (alpha 0 and 255 leave it unchanged).</summary>
    public static void Unpremultiply(Span<byte> pixels, int channels)
    {
        for (int p = 0; p + channels <= pixels.Length; p += channels)
        {
            int alpha = pixels[p + channels - 1];
            if (alpha == 255 || alpha == 0) continue;
            for (int c = 0; c < channels - 1; c++) pixels[p + c] = (byte)Math.Min(255 * pixels[p + c] / alpha, 255);
        }
    }

    /// <summary>round(a·b/255) without a division: Pillow's MULDIV255.</summary>
    private static byte MultiplyDivide255(int a, int b)
    {
        int t = a * b + 128;
        return (byte)(((t >> 8) + t) >> 8);
    }
}
