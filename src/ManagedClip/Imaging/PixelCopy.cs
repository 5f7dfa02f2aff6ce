using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace ManagedClip.Imaging;

/// <summary>
/// Copies ImageSharp pixels into a <see cref="NativeImage"/> of a Pillow mode. 8-bit sources arrive as
/// <see cref="Rgba32"/>, 16-bit ones as <see cref="Rgba64"/> (ImageSharp's own 16→8 conversion rounds, while Pillow
/// keeps the high byte, so the narrowing happens here).
/// </summary>
internal static class PixelCopy
{
    public static NativeImage ToNative<TPixel>(Image<TPixel> image, PillowMode mode, (byte R, byte G, byte B)? transparentColour)
        where TPixel : unmanaged, IPixel<TPixel>
    {
        var native = NativeImage.Create(mode, image.Width, image.Height);
        switch (image)
        {
            case Image<Rgba32> eightBit:
                eightBit.ProcessPixelRows(rows =>
                {
                    for (int y = 0; y < rows.Height; y++) CopyRow(rows.GetRowSpan(y), native, y, transparentColour);
                });
                break;
            case Image<Rgba64> sixteenBit:
                sixteenBit.ProcessPixelRows(rows =>
                {
                    for (int y = 0; y < rows.Height; y++) CopyRow(rows.GetRowSpan(y), native, y);
                });
                break;
            default:
                throw new NotSupportedException($"pixel type {typeof(TPixel).Name}");
        }
        return native;
    }

    private static void CopyRow(Span<Rgba32> row, NativeImage native, int y, (byte R, byte G, byte B)? transparentColour)
    {
        if (transparentColour is { } fill)
        {
            foreach (ref var p in row)
            {
                if (p.A == 0) p = new Rgba32(fill.R, fill.G, fill.B, 0);
            }
        }
        int width = row.Length;
        var output = native.Bytes.AsSpan(y * width * native.Channels, width * native.Channels);
        switch (native.Mode)
        {
            case PillowMode.Bilevel:
                for (int x = 0; x < width; x++) output[x] = row[x].R != 0 ? (byte)255 : (byte)0;
                break;
            case PillowMode.L:
                for (int x = 0; x < width; x++) output[x] = row[x].R;
                break;
            case PillowMode.LA:
                for (int x = 0; x < width; x++) (output[2 * x], output[2 * x + 1]) = (row[x].R, row[x].A);
                break;
            case PillowMode.P:
            case PillowMode.Rgb:
                for (int x = 0; x < width; x++) (output[3 * x], output[3 * x + 1], output[3 * x + 2]) = (row[x].R, row[x].G, row[x].B);
                break;
            case PillowMode.Rgba:
                System.Runtime.InteropServices.MemoryMarshal.AsBytes(row).CopyTo(output); // Rgba32 is R, G, B, A bytes
                break;
            default:
                throw new NotSupportedException($"mode {native.Mode} from 8-bit pixels");
        }
    }

    private static void CopyRow(ReadOnlySpan<Rgba64> row, NativeImage native, int y)
    {
        if (native.Mode == PillowMode.I)
        {
            var values = native.Ints.AsSpan(y * row.Length, row.Length);
            for (int x = 0; x < row.Length; x++) values[x] = row[x].R;
            return;
        }
        int channels = native.Channels;
        var output = native.Bytes.AsSpan(y * row.Length * channels, row.Length * channels);
        for (int x = 0; x < row.Length; x++)
        {
            var p = row[x];
            byte r = (byte)(p.R >> 8), g = (byte)(p.G >> 8), b = (byte)(p.B >> 8), a = (byte)(p.A >> 8);
            switch (native.Mode)
            {
                case PillowMode.Bilevel: output[x] = r != 0 ? (byte)255 : (byte)0; break;
                case PillowMode.L: output[x] = r; break;
                case PillowMode.LA: output[2 * x] = r; output[2 * x + 1] = a; break;
                case PillowMode.P:
                case PillowMode.Rgb: output[3 * x] = r; output[3 * x + 1] = g; output[3 * x + 2] = b; break;
                case PillowMode.Rgba: output[4 * x] = r; output[4 * x + 1] = g; output[4 * x + 2] = b; output[4 * x + 3] = a; break;
                default: throw new NotSupportedException($"mode {native.Mode} from 16-bit pixels");
            }
        }
    }
}
