namespace ManagedClip.Imaging;

/// <summary>
/// What Pillow 9.4's GIF plugin decides from the headers before the first frame (GifImagePlugin <c>_open</c> and
/// <c>_seek(0)</c>): which palette frame 0 uses, whether it is really a palette (a palette that is exactly the grey
/// ramp (i, i, i) makes Pillow open the file as mode L, which is then resized bicubic rather than nearest), and
/// the transparent index. ImageSharp decodes the pixels; this only reads the few header bytes it does not expose.
/// </summary>
internal sealed class GifHeader
{
    private GifHeader(byte[]? palette, int? transparentIndex)
    {
        Palette = palette;
        TransparentIndex = transparentIndex;
    }

    /// <summary>Frame 0's colour table as RGB triplets, or null when Pillow treats the frame as grey (mode L).</summary>
    public byte[]? Palette { get; }

    /// <summary>Frame 0's transparent colour index from its graphic control extension, if any.</summary>
    public int? TransparentIndex { get; }

    /// <summary>Pillow's mode for frame 0.</summary>
    public PillowMode Mode => Palette is null ? PillowMode.L : PillowMode.P;

    /// <summary>
    /// The colour Pillow shows where ImageSharp leaves a pixel transparent: Pillow fills frame 0's canvas with the
    /// transparent index (or 0) and keeps that index's colour, since convert("RGB") ignores transparency.
    /// </summary>
    public (byte R, byte G, byte B) CanvasColour
    {
        get
        {
            int index = TransparentIndex ?? 0;
            if (Palette is null) return ((byte)index, (byte)index, (byte)index);
            return 3 * index + 2 < Palette.Length
                ? (Palette[3 * index], Palette[3 * index + 1], Palette[3 * index + 2])
                : ((byte)0, (byte)0, (byte)0);
        }
    }

    public static GifHeader Read(ReadOnlySpan<byte> gif)
    {
        // Logical screen descriptor: 6-byte signature, width, height, flags at 10.
        int position = 13;
        byte[]? globalPalette = null;
        if (gif.Length > 10 && (gif[10] & 0x80) != 0)
        {
            var table = TakeTable(gif, position, gif[10]);
            position += table.Length;
            if (IsPaletteNeeded(table)) globalPalette = table.ToArray();
        }

        int? transparentIndex = null;
        while (position < gif.Length)
        {
            byte introducer = gif[position];
            if (introducer == 0x3B) break; // trailer: no image at all (ImageSharp reports that)
            if (introducer == 0x21 && position + 1 < gif.Length)
            {
                byte label = gif[position + 1];
                position += 2;
                bool first = true;
                while (position < gif.Length && gif[position] != 0)
                {
                    int size = gif[position];
                    // Graphic control extension: flags, delay (2 bytes), transparent index.
                    if (first && label == 0xF9 && size >= 4 && position + 4 < gif.Length && (gif[position + 1] & 1) != 0)
                        transparentIndex = gif[position + 4];
                    first = false;
                    position += 1 + size;
                }
                position++; // block terminator
                continue;
            }
            if (introducer == 0x2C)
            {
                // Image descriptor: left, top, width, height (2 bytes each), flags.
                if (position + 9 < gif.Length && (gif[position + 9] & 0x80) != 0)
                {
                    var local = TakeTable(gif, position + 10, gif[position + 9]);
                    return new GifHeader(IsPaletteNeeded(local) ? local.ToArray() : null, transparentIndex);
                }
                return new GifHeader(globalPalette, transparentIndex);
            }
            position++; // Pillow skips stray bytes
        }
        return new GifHeader(globalPalette, transparentIndex);
    }

    private static ReadOnlySpan<byte> TakeTable(ReadOnlySpan<byte> gif, int start, byte flags)
    {
        int length = 3 << ((flags & 7) + 1);
        start = Math.Min(start, gif.Length);
        return gif.Slice(start, Math.Min(length, gif.Length - start));
    }

    /// <summary>Pillow's <c>_is_palette_needed</c>: false only if entry i is (i, i, i) for every entry.</summary>
    private static bool IsPaletteNeeded(ReadOnlySpan<byte> table)
    {
        for (int i = 0; i + 2 < table.Length; i += 3)
        {
            int index = i / 3;
            if (table[i] != index || table[i + 1] != index || table[i + 2] != index) return true;
        }
        return false;
    }
}
