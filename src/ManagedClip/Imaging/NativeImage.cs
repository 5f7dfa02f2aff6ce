namespace ManagedClip.Imaging;

/// <summary>
/// A decoded image in its Pillow mode, before any conversion to RGB, held in arrays. 8-bit modes keep interleaved
/// bytes <c>[Height, Width, channels]</c>; mode I keeps one int32 per pixel <c>[Height, Width]</c>.
/// </summary>
internal sealed class NativeImage : PixelRows
{
    private NativeImage(PillowMode mode, int width, int height, byte[] bytes, int[] ints)
        : base(mode, width, height)
    {
        Bytes = bytes;
        Ints = ints;
    }

    /// <summary>Pixels of an 8-bit mode, <c>[Height, Width, Channels]</c>; empty for mode I.</summary>
    public byte[] Bytes { get; }

    /// <summary>Pixels of mode I, <c>[Height, Width]</c>; empty for 8-bit modes.</summary>
    public int[] Ints { get; }

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

    /// <summary>Every pixel of <paramref name="rows"/> copied into arrays (tests and small images).</summary>
    public static NativeImage CopyOf(PixelRows rows)
    {
        if (rows is NativeImage native) return native;
        var copy = Create(rows.Mode, rows.Width, rows.Height);
        for (int y = 0; y < rows.Height; y++)
        {
            if (rows.Mode == PillowMode.I) rows.ReadRow(y, 0, copy.Ints.AsSpan(y * rows.Width, rows.Width));
            else rows.ReadRow(y, 0, copy.Bytes.AsSpan(y * rows.Width * copy.Channels, rows.Width * copy.Channels));
        }
        return copy;
    }

    // Offsets fit in int: they lie inside an array.
    public override void ReadRow(int y, int x, Span<byte> destination) =>
        Bytes.AsSpan((y * Width + x) * Channels, destination.Length).CopyTo(destination);

    public override void ReadRow(int y, int x, Span<int> destination) =>
        Ints.AsSpan(y * Width + x, destination.Length).CopyTo(destination);
}
