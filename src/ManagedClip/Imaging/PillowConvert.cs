namespace ManagedClip.Imaging;

/// <summary>
/// The step after the resize and crop (<see cref="PillowResize.Window"/>): open_clip's <c>convert("RGB")</c>
/// (Pillow Convert.c: L/1/LA → grey copied to R, G and B; RGBA → alpha dropped without compositing; P → palette
/// colour; I → clipped to 0..255, not rescaled; CMYK → <c>cmyk2rgb</c>).
/// </summary>
internal static class PillowConvert
{
    /// <summary>Pillow's <c>convert("RGB")</c>. <paramref name="rgb"/>: [Height, Width, 3].</summary>
    public static void ToRgb(NativeImage image, Span<byte> rgb)
    {
        int pixels = image.Width * image.Height;
        if (rgb.Length != pixels * 3) throw new ArgumentException($"needs {pixels * 3} bytes, got {rgb.Length}", nameof(rgb));
        var bytes = image.Bytes;
        switch (image.Mode)
        {
            case PillowMode.Bilevel:
            case PillowMode.L:
                for (int i = 0; i < pixels; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = bytes[i];
                break;
            case PillowMode.LA:
                for (int i = 0; i < pixels; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = bytes[2 * i];
                break;
            case PillowMode.P:
            case PillowMode.Rgb:
                bytes.AsSpan(0, pixels * 3).CopyTo(rgb);
                break;
            case PillowMode.Rgba:
                for (int i = 0; i < pixels; i++)
                {
                    rgb[3 * i] = bytes[4 * i];
                    rgb[3 * i + 1] = bytes[4 * i + 1];
                    rgb[3 * i + 2] = bytes[4 * i + 2];
                }
                break;
            case PillowMode.I:
                for (int i = 0; i < pixels; i++)
                    rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = (byte)Math.Clamp(image.Ints[i], 0, 255);
                break;
            case PillowMode.Cmyk:
                for (int i = 0; i < pixels; i++)
                {
                    // cmyk2rgb: each channel (255 − K) − (channel · (255 − K)) / 255, with Pillow's rounding division.
                    int notK = 255 - bytes[4 * i + 3];
                    rgb[3 * i] = (byte)Math.Clamp(notK - MulDiv255(bytes[4 * i], notK), 0, 255);
                    rgb[3 * i + 1] = (byte)Math.Clamp(notK - MulDiv255(bytes[4 * i + 1], notK), 0, 255);
                    rgb[3 * i + 2] = (byte)Math.Clamp(notK - MulDiv255(bytes[4 * i + 2], notK), 0, 255);
                }
                break;
            default:
                throw new NotSupportedException($"mode {image.Mode}");
        }
    }

    /// <summary>Pillow's <c>MULDIV255</c>: a·b / 255 rounded, as ((t &gt;&gt; 8) + t) &gt;&gt; 8 with t = a·b + 128.</summary>
    private static int MulDiv255(int a, int b)
    {
        int t = a * b + 128;
        return ((t >> 8) + t) >> 8;
    }
}
