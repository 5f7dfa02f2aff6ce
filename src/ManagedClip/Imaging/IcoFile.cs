using System.Buffers.Binary;

namespace ManagedClip.Imaging;

/// <summary>
/// A Windows icon (.ico) as Pillow 9.4 opens it (IcoImagePlugin): the directory's entries sorted by colour depth,
/// then by area, then reversed, and the first one loaded — the largest icon, the deepest among equals, the last in
/// the file among ties. A PNG entry is that PNG (its own mode); a BMP entry is a DIB of twice the icon's height whose
/// lower half is the colour image and whose 1-bit AND mask (or, at 32 bits, the fourth byte of each pixel) becomes
/// the alpha of an RGBA image.
/// </summary>
internal sealed class IcoFile
{
    private const int DirectoryEntrySize = 16;

    private IcoFile(int offset, int length, int bitsPerPixel)
    {
        Offset = offset;
        Length = length;
        BitsPerPixel = bitsPerPixel;
    }

    /// <summary>Where the chosen entry's image data starts.</summary>
    public int Offset { get; }

    /// <summary>The chosen entry's data length (from its offset to the directory's size, cut at the file end).</summary>
    public int Length { get; }

    /// <summary>The directory's bits per pixel for the chosen entry.</summary>
    public int BitsPerPixel { get; }

    /// <summary>True for the ICO signature Pillow accepts: reserved 0, type 1.</summary>
    public static bool IsIco(ReadOnlySpan<byte> data) => data.Length >= 4 && data[..4].SequenceEqual((ReadOnlySpan<byte>)[0, 0, 1, 0]);

    /// <summary>Picks the entry Pillow loads.</summary>
    public static IcoFile Read(ReadOnlySpan<byte> ico, string sourceName)
    {
        if (ico.Length < 6) throw InvalidImage.Error(sourceName, "truncated ICO: image file is truncated (no icon directory)");
        int count = BinaryPrimitives.ReadUInt16LittleEndian(ico[4..]);
        if (count == 0) throw InvalidImage.Error(sourceName, "malformed ICO: the icon directory is empty");
        if (6 + DirectoryEntrySize * count > ico.Length)
            throw InvalidImage.Error(sourceName, $"truncated ICO: image file is truncated (the directory lists {count} icons)");

        var entries = new List<(int Square, int Depth, int Index, int Bits, long Size, long Offset)>();
        for (int i = 0; i < count; i++)
        {
            var entry = ico.Slice(6 + DirectoryEntrySize * i, DirectoryEntrySize);
            int width = entry[0] == 0 ? 256 : entry[0], height = entry[1] == 0 ? 256 : entry[1];
            int colours = entry[2], bits = BinaryPrimitives.ReadUInt16LittleEndian(entry[6..]);
            // Pillow's colour_depth: bpp, else ceil(log2(colours)) when colours are given, else 256.
            int depth = bits != 0 ? bits : ColourDepth(colours);
            entries.Add((width * height, depth, i, bits,
                BinaryPrimitives.ReadUInt32LittleEndian(entry[8..]), BinaryPrimitives.ReadUInt32LittleEndian(entry[12..])));
        }
        // sorted(by depth), sorted(by square), reverse(): descending square, then depth, then later entries first.
        var chosen = entries.OrderByDescending(e => e.Square).ThenByDescending(e => e.Depth).ThenByDescending(e => e.Index).First();
        if (chosen.Offset >= ico.Length)
            throw InvalidImage.Error(sourceName, $"truncated ICO: image file is truncated (icon data at byte {chosen.Offset:N0} is past the end)");
        long length = Math.Min(chosen.Size, ico.Length - chosen.Offset);
        return new IcoFile((int)chosen.Offset, (int)length, chosen.Bits);
    }

    private static int ColourDepth(int colours)
    {
        int bits = colours == 0 ? 0 : (int)Math.Ceiling(Math.Log2(colours));
        return bits != 0 ? bits : 256;
    }

    /// <summary>True when the chosen entry holds a PNG rather than a DIB.</summary>
    public bool IsPng(ReadOnlySpan<byte> ico) => ico.Slice(Offset, Length).StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G']);

    /// <summary>
    /// The DIB entry as a stand-alone BMP file holding only its colour image (header height halved, a 14-byte file
    /// header in front), for the BMP decoder; and the geometry needed to read its alpha afterwards.
    /// </summary>
    public (byte[] Bmp, Dib Geometry) ColourImageAsBmp(ReadOnlySpan<byte> ico, string sourceName)
    {
        var dib = ico.Slice(Offset, Length);
        if (dib.Length < 40) throw InvalidImage.Error(sourceName, "truncated ICO: image file is truncated (icon bitmap header)");
        int headerSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(dib);
        int width = BinaryPrimitives.ReadInt32LittleEndian(dib[4..]);
        int doubledHeight = BinaryPrimitives.ReadInt32LittleEndian(dib[8..]);
        int bits = BinaryPrimitives.ReadUInt16LittleEndian(dib[14..]);
        int compression = (int)BinaryPrimitives.ReadUInt32LittleEndian(dib[16..]);
        uint used = BinaryPrimitives.ReadUInt32LittleEndian(dib[32..]);
        if (headerSize < 40 || headerSize > dib.Length || width <= 0 || doubledHeight <= 1 || bits is not (1 or 4 or 8 or 24 or 32) || compression != 0)
            throw InvalidImage.Error(sourceName, $"unsupported ICO bitmap ({width}x{doubledHeight / 2}, {bits} bits, compression {compression})");
        int height = doubledHeight / 2;
        long colours = bits <= 8 ? (used is > 0 and <= 256 ? used : 1u << bits) : 0;
        long pixels = headerSize + 4 * colours;
        long stride = ((long)width * bits + 31) / 32 * 4;
        long maskStride = ((long)width + 31) / 32 * 4;
        if (pixels + stride * height > dib.Length)
            throw InvalidImage.Error(sourceName, "truncated ICO: image file is truncated (icon bitmap data)");

        var bmp = new byte[14 + dib.Length];
        bmp[0] = (byte)'B';
        bmp[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(2), bmp.Length);
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(10), (int)(14 + pixels));
        dib.CopyTo(bmp.AsSpan(14));
        BinaryPrimitives.WriteInt32LittleEndian(bmp.AsSpan(14 + 8), height);
        return (bmp, new Dib(width, height, bits, (int)pixels, (int)stride, (int)maskStride));
    }

    /// <summary>Where a DIB entry's pixels and AND mask lie (offsets inside the entry).</summary>
    public readonly record struct Dib(int Width, int Height, int Bits, int PixelsOffset, int Stride, int MaskStride);

    /// <summary>
    /// The alpha Pillow puts on a DIB icon, top row first: at 32 bits the fourth byte of each pixel; otherwise the
    /// AND mask, 0 where the mask bit is set (transparent) and 255 elsewhere. Pillow reads the mask from the end of
    /// the entry's data (offset + size − mask bytes).
    /// </summary>
    // result: [Height, Width]
    public byte[] Alpha(ReadOnlySpan<byte> ico, Dib dib, string sourceName)
    {
        var data = ico.Slice(Offset, Length);
        var alpha = new byte[dib.Width * dib.Height];
        for (int row = 0; row < dib.Height; row++)
        {
            int stored = dib.Height - 1 - row; // bottom-up
            if (dib.Bits == 32)
            {
                var line = data.Slice(dib.PixelsOffset + stored * dib.Stride, dib.Width * 4);
                for (int x = 0; x < dib.Width; x++) alpha[row * dib.Width + x] = line[4 * x + 3];
                continue;
            }
            long maskStart = data.Length - (long)dib.MaskStride * dib.Height;
            if (maskStart < dib.PixelsOffset)
                throw InvalidImage.Error(sourceName, "truncated ICO: image file is truncated (icon transparency mask)");
            var mask = data.Slice((int)maskStart + stored * dib.MaskStride, dib.MaskStride);
            for (int x = 0; x < dib.Width; x++)
                alpha[row * dib.Width + x] = (mask[x >> 3] & (0x80 >> (x & 7))) != 0 ? (byte)0 : (byte)255;
        }
        return alpha;
    }
}
