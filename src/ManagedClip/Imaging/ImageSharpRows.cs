using System.Runtime.InteropServices;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Advanced;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Imaging;

/// <summary>
/// An image decoded by ImageSharp, read in a Pillow mode one row segment at a time, converted as it is read: the
/// decoder's buffer is the only full-size copy of the pixels. 8-bit sources arrive as <see cref="Rgba32"/>; 16-bit
/// ones as <see cref="Rgba64"/>, <see cref="Rgb48"/> or <see cref="L16"/>, and the narrowing to 8 bits happens here
/// because Pillow keeps the high byte while ImageSharp's own 16→8 conversion rounds. Owns the image.
/// </summary>
internal sealed class ImageSharpRows<TPixel> : PixelRows
    where TPixel : unmanaged, IPixel<TPixel>
{
    private readonly Image<TPixel> image;
    private readonly (byte R, byte G, byte B)? transparentColour;

    /// <param name="image">The decoded image (taken over: disposed with this).</param>
    /// <param name="mode">The mode Pillow would open the file in.</param>
    /// <param name="transparentColour">For GIF: the colour Pillow shows where ImageSharp left a pixel transparent.</param>
    public ImageSharpRows(Image<TPixel> image, PillowMode mode, (byte R, byte G, byte B)? transparentColour = null)
        : base(mode, image.Width, image.Height)
    {
        if (mode == PillowMode.I && typeof(TPixel) != typeof(L16) && typeof(TPixel) != typeof(Rgba64))
            throw new ArgumentException($"mode I needs 16-bit pixels, not {typeof(TPixel).Name}", nameof(mode));
        this.image = image;
        this.transparentColour = transparentColour;
    }

    private Span<TPixel> Row(int y, int x, int count) => image.DangerousGetPixelRowMemory(y).Span.Slice(x, count);

    public override void ReadRow(int y, int x, Span<byte> destination)
    {
        var row = Row(y, x, destination.Length / Channels);
        if (typeof(TPixel) == typeof(Rgba32)) Narrow(MemoryMarshal.Cast<TPixel, Rgba32>(row), destination);
        else if (typeof(TPixel) == typeof(Rgba64)) Narrow(MemoryMarshal.Cast<TPixel, Rgba64>(row), destination);
        else if (typeof(TPixel) == typeof(Rgb48)) Narrow(MemoryMarshal.Cast<TPixel, Rgb48>(row), destination);
        else throw new NotSupportedException($"mode {Mode.PillowName()} from {typeof(TPixel).Name} pixels");
    }

    public override void ReadRow(int y, int x, Span<int> destination)
    {
        var row = Row(y, x, destination.Length);
        if (typeof(TPixel) == typeof(L16))
        {
            var grey = MemoryMarshal.Cast<TPixel, L16>(row);
            for (int i = 0; i < grey.Length; i++) destination[i] = grey[i].PackedValue;
        }
        else if (typeof(TPixel) == typeof(Rgba64))
        {
            var grey = MemoryMarshal.Cast<TPixel, Rgba64>(row);
            for (int i = 0; i < grey.Length; i++) destination[i] = grey[i].R;
        }
        else throw new NotSupportedException($"mode I from {typeof(TPixel).Name} pixels");
    }

    public override void Dispose() => image.Dispose();

    private void Narrow(ReadOnlySpan<Rgba32> row, Span<byte> output)
    {
        if (transparentColour is { } fill)
        {
            var filled = row.ToArray(); // one row segment, GIFs only
            foreach (ref var p in filled.AsSpan())
            {
                if (p.A == 0) p = new Rgba32(fill.R, fill.G, fill.B, 0);
            }
            row = filled;
        }
        switch (Mode)
        {
            case PillowMode.Bilevel:
                for (int x = 0; x < row.Length; x++) output[x] = row[x].R != 0 ? (byte)255 : (byte)0;
                break;
            case PillowMode.L:
                for (int x = 0; x < row.Length; x++) output[x] = row[x].R;
                break;
            case PillowMode.LA:
                for (int x = 0; x < row.Length; x++) (output[2 * x], output[2 * x + 1]) = (row[x].R, row[x].A);
                break;
            case PillowMode.P:
            case PillowMode.Rgb:
                for (int x = 0; x < row.Length; x++) (output[3 * x], output[3 * x + 1], output[3 * x + 2]) = (row[x].R, row[x].G, row[x].B);
                break;
            case PillowMode.Rgba:
                MemoryMarshal.AsBytes(row).CopyTo(output); // Rgba32 is R, G, B, A bytes
                break;
            default:
                throw new NotSupportedException($"mode {Mode.PillowName()} from 8-bit pixels");
        }
    }

    private void Narrow(ReadOnlySpan<Rgba64> row, Span<byte> output)
    {
        for (int x = 0; x < row.Length; x++)
        {
            var p = row[x];
            Store(output, x, (byte)(p.R >> 8), (byte)(p.G >> 8), (byte)(p.B >> 8), (byte)(p.A >> 8));
        }
    }

    private void Narrow(ReadOnlySpan<Rgb48> row, Span<byte> output)
    {
        for (int x = 0; x < row.Length; x++)
        {
            var p = row[x];
            Store(output, x, (byte)(p.R >> 8), (byte)(p.G >> 8), (byte)(p.B >> 8), 255);
        }
    }

    private void Store(Span<byte> output, int x, byte r, byte g, byte b, byte a)
    {
        switch (Mode)
        {
            case PillowMode.Bilevel: output[x] = r != 0 ? (byte)255 : (byte)0; break;
            case PillowMode.L: output[x] = r; break;
            case PillowMode.LA: output[2 * x] = r; output[2 * x + 1] = a; break;
            case PillowMode.P:
            case PillowMode.Rgb: output[3 * x] = r; output[3 * x + 1] = g; output[3 * x + 2] = b; break;
            case PillowMode.Rgba: output[4 * x] = r; output[4 * x + 1] = g; output[4 * x + 2] = b; output[4 * x + 3] = a; break;
            default: throw new NotSupportedException($"mode {Mode.PillowName()} from 16-bit pixels");
        }
    }
}
