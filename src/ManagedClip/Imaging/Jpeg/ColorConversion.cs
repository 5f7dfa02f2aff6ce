namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// libjpeg-turbo's fixed-point colour conversion (<c>jdcolor.c</c>, <c>SCALEBITS</c> = 16) for 8-bit samples, and
/// Pillow's handling of CMYK: Pillow unpacks JPEG CMYK with raw mode "CMYK;I" (Adobe's inverted convention), so
/// every CMYK channel it returns is 255 − the decoded value.
/// </summary>
internal static class ColorConversion
{
    private const int ScaleBits = 16;
    private const int OneHalf = 1 << (ScaleBits - 1);

    // FIX(x) = round(x · 2^16).
    private const int Fix1_40200 = 91881;
    private const int Fix1_77200 = 116130;
    private const int Fix0_71414 = 46802;
    private const int Fix0_34414 = 22554;

    /// <summary>Cr → R offset: round(1.402·(Cr − 128)).</summary>
    public static readonly int[] CrToR = Table(i => (Fix1_40200 * (i - 128) + OneHalf) >> ScaleBits);

    /// <summary>Cb → B offset: round(1.772·(Cb − 128)).</summary>
    public static readonly int[] CbToB = Table(i => (Fix1_77200 * (i - 128) + OneHalf) >> ScaleBits);

    /// <summary>Cr → G, scaled by 2^16: −0.71414·(Cr − 128).</summary>
    public static readonly int[] CrToG = Table(i => -Fix0_71414 * (i - 128));

    /// <summary>Cb → G, scaled by 2^16, with the rounding half folded in: −0.34414·(Cb − 128) + ½.</summary>
    public static readonly int[] CbToG = Table(i => -Fix0_34414 * (i - 128) + OneHalf);

    private static int[] Table(Func<int, int> entry)
    {
        var table = new int[256];
        for (int i = 0; i < 256; i++) table[i] = entry(i);
        return table;
    }

    private static byte Clamp(int value) => (byte)Math.Clamp(value, 0, 255);

    /// <summary>YCbCr → RGB (<c>ycc_rgb_convert</c>). <paramref name="rgb"/>: [width, 3].</summary>
    public static void YCbCrToRgb(ReadOnlySpan<byte> y, ReadOnlySpan<byte> cb, ReadOnlySpan<byte> cr, Span<byte> rgb, int width)
    {
        rgb = rgb[..(3 * width)];
        y = y[..width];
        cb = cb[..width];
        cr = cr[..width];
        for (int x = 0; x < width; x++)
        {
            int luma = y[x], blue = cb[x], red = cr[x];
            rgb[3 * x] = Clamp(luma + CrToR[red]);
            rgb[3 * x + 1] = Clamp(luma + ((CbToG[blue] + CrToG[red]) >> ScaleBits));
            rgb[3 * x + 2] = Clamp(luma + CbToB[blue]);
        }
    }

    /// <summary>
    /// YCCK → CMYK as Pillow returns it: libjpeg's <c>ycck_cmyk_convert</c> gives 255 − (YCbCr→RGB) for C, M, Y and
    /// passes K; Pillow then inverts all four. So C, M, Y are the clamped R, G, B and K is 255 − stored K.
    /// </summary>
    public static void YcckToPillowCmyk(ReadOnlySpan<byte> y, ReadOnlySpan<byte> cb, ReadOnlySpan<byte> cr, ReadOnlySpan<byte> k, Span<byte> cmyk, int width)
    {
        cmyk = cmyk[..(4 * width)];
        for (int x = 0; x < width; x++)
        {
            int luma = y[x], blue = cb[x], red = cr[x];
            cmyk[4 * x] = Clamp(luma + CrToR[red]);
            cmyk[4 * x + 1] = Clamp(luma + ((CbToG[blue] + CrToG[red]) >> ScaleBits));
            cmyk[4 * x + 2] = Clamp(luma + CbToB[blue]);
            cmyk[4 * x + 3] = (byte)(255 - k[x]);
        }
    }

    /// <summary>Stored CMYK → what Pillow returns: every channel 255 − value.</summary>
    public static void CmykToPillowCmyk(ReadOnlySpan<byte> c, ReadOnlySpan<byte> m, ReadOnlySpan<byte> y, ReadOnlySpan<byte> k, Span<byte> cmyk, int width)
    {
        cmyk = cmyk[..(4 * width)];
        for (int x = 0; x < width; x++)
        {
            cmyk[4 * x] = (byte)(255 - c[x]);
            cmyk[4 * x + 1] = (byte)(255 - m[x]);
            cmyk[4 * x + 2] = (byte)(255 - y[x]);
            cmyk[4 * x + 3] = (byte)(255 - k[x]);
        }
    }
}
