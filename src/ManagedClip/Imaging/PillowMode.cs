namespace ManagedClip.Imaging;

/// <summary>
/// The Pillow image mode that <c>PIL.Image.open</c> gives a file. open_clip never converts before resizing, so the
/// mode decides how the image is resampled (see <see cref="PillowResize"/>) and how it becomes RGB.
/// </summary>
internal enum PillowMode
{
    /// <summary>"1": bilevel, stored here as 0/255 in one byte; resized with NEAREST like P.</summary>
    Bilevel,

    /// <summary>"L": 8-bit grey, one byte per pixel.</summary>
    L,

    /// <summary>"LA": grey + alpha, two bytes per pixel; resized premultiplied.</summary>
    LA,

    /// <summary>
    /// "P": palette image. Stored here as the looked-up RGB colours (ImageSharp does not expose the indices);
    /// Pillow resizes P with NEAREST, and nearest on indices followed by the lookup equals nearest on colours.
    /// </summary>
    P,

    /// <summary>"RGB": three bytes per pixel.</summary>
    Rgb,

    /// <summary>"RGBA": four bytes per pixel; resized premultiplied, alpha dropped (not composited) at the end.</summary>
    Rgba,

    /// <summary>"I": 32-bit signed integer grey (a 16-bit grey PNG opens as I with values 0..65535).</summary>
    I,

    /// <summary>
    /// "CMYK": four bytes per pixel (a CMYK or YCCK JPEG). Resized as four independent channels (not
    /// premultiplied), converted to RGB only after the crop, with Pillow's <c>cmyk2rgb</c>.
    /// </summary>
    Cmyk,
}

/// <summary>Facts about each mode used by decoding, resizing and conversion.</summary>
internal static class PillowModes
{
    /// <summary>Bytes per pixel in <see cref="NativeImage.Bytes"/> (mode I keeps one int per pixel instead).</summary>
    public static int ChannelCount(this PillowMode mode) => mode switch
    {
        PillowMode.Bilevel or PillowMode.L or PillowMode.I => 1,
        PillowMode.LA => 2,
        PillowMode.P or PillowMode.Rgb => 3,
        PillowMode.Rgba or PillowMode.Cmyk => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(mode)),
    };

    /// <summary>Pillow's <c>Image.resize</c> forces NEAREST for modes "1" and "P".</summary>
    public static bool ResizesWithNearest(this PillowMode mode) => mode is PillowMode.Bilevel or PillowMode.P;

    /// <summary>Pillow's <c>Image.resize</c> resamples "LA" and "RGBA" as premultiplied "La" / "RGBa".</summary>
    public static bool ResizesPremultiplied(this PillowMode mode) => mode is PillowMode.LA or PillowMode.Rgba;

    /// <summary>The name Pillow uses, for messages and tests.</summary>
    public static string PillowName(this PillowMode mode) => mode switch
    {
        PillowMode.Bilevel => "1",
        PillowMode.Rgb => "RGB",
        PillowMode.Rgba => "RGBA",
        PillowMode.Cmyk => "CMYK",
        _ => mode.ToString(),
    };
}
