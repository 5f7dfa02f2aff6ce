namespace ManagedClip.Imaging;

/// <summary>
/// A decoded image in its Pillow mode, before any conversion to RGB. 8-bit modes keep interleaved bytes
/// <c>[Height, Width, channels]</c>; mode I keeps one int32 per pixel <c>[Height, Width]</c>.
/// </summary>
internal sealed class NativeImage
{
    private NativeImage(PillowMode mode, int width, int height, byte[] bytes, int[] ints)
    {
        Mode = mode;
        Width = width;
        Height = height;
        Bytes = bytes;
        Ints = ints;
    }

    /// <summary>Pillow mode the pixels are in.</summary>
    public PillowMode Mode { get; }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Pixels of an 8-bit mode, <c>[Height, Width, Channels]</c>; empty for mode I.</summary>
    public byte[] Bytes { get; }

    /// <summary>Pixels of mode I, <c>[Height, Width]</c>; empty for 8-bit modes.</summary>
    public int[] Ints { get; }

    /// <summary>Bytes per pixel in <see cref="Bytes"/> (1 for mode I, whose pixels are in <see cref="Ints"/>).</summary>
    public int Channels => Mode.ChannelCount();

    /// <summary>A zero-filled image of the given mode and size.</summary>
    public static NativeImage Create(PillowMode mode, int width, int height)
    {
        long pixels = (long)width * height;
        return mode == PillowMode.I
            ? new NativeImage(mode, width, height, [], new int[pixels])
            : new NativeImage(mode, width, height, new byte[checked(pixels * mode.ChannelCount())], []);
    }

    /// <summary>An image over existing 8-bit pixels <c>[height, width, channels]</c> (taken, not copied).</summary>
    public static NativeImage FromBytes(PillowMode mode, int width, int height, byte[] bytes)
    {
        if (mode == PillowMode.I || bytes.Length != (long)width * height * mode.ChannelCount())
            throw new ArgumentException($"{bytes.Length} bytes do not hold a {width}x{height} {mode.PillowName()} image", nameof(bytes));
        return new NativeImage(mode, width, height, bytes, []);
    }

    public override string ToString() => $"{Mode.PillowName()} {Width}x{Height}";
}
