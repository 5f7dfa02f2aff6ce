namespace ManagedClip.Imaging;

/// <summary>
/// A decoded image in its Pillow mode, read one row segment at a time. The resize reads only the rows and columns
/// the centre crop needs through this, so a decoded image is never copied whole: <see cref="NativeImage"/> holds
/// its pixels in arrays, <see cref="ImageSharpRows{TPixel}"/> converts rows out of the decoder's own buffer.
/// </summary>
internal abstract class PixelRows : IDisposable
{
    protected PixelRows(PillowMode mode, int width, int height)
    {
        Mode = mode;
        Width = width;
        Height = height;
    }

    /// <summary>Pillow mode the pixels are in.</summary>
    public PillowMode Mode { get; }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Bytes per pixel of an 8-bit mode (1 for mode I, whose pixels are ints).</summary>
    public int Channels => Mode.ChannelCount();

    /// <summary>
    /// Copies pixels <c>[x, x + destination.Length / Channels)</c> of row <paramref name="y"/> of an 8-bit mode.
    /// </summary>
    // destination: [pixels, Channels]
    public abstract void ReadRow(int y, int x, Span<byte> destination);

    /// <summary>Copies pixels <c>[x, x + destination.Length)</c> of row <paramref name="y"/> of mode I.</summary>
    // destination: [pixels]
    public abstract void ReadRow(int y, int x, Span<int> destination);

    /// <summary>Releases the pixel buffer (a decoder's buffers go back to its allocator).</summary>
    public virtual void Dispose()
    {
    }

    public override string ToString() => $"{Mode.PillowName()} {Width}x{Height}";
}
