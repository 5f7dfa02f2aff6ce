using System.Buffers.Binary;

namespace ManagedClip.Imaging;

/// <summary>
/// Pillow 9.4's mode for a BMP file (BmpImagePlugin): palette files whose colours are exactly the grey ramp open
/// as L ("1" for black/white with two colours), other palette files as P; 32-bit files with an alpha bit mask as
/// RGBA; everything else as RGB.
/// </summary>
internal static class BmpHeader
{
    private const int FileHeaderSize = 14;
    private const uint BitFields = 3;

    public static PillowMode ReadMode(ReadOnlySpan<byte> bmp)
    {
        if (bmp.Length < FileHeaderSize + 16) return PillowMode.Rgb;
        int headerSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(bmp[FileHeaderSize..]);
        bool isCoreHeader = headerSize == 12; // OS/2: 16-bit sizes, 3-byte palette entries
        int bits = isCoreHeader
            ? BinaryPrimitives.ReadUInt16LittleEndian(bmp[(FileHeaderSize + 10)..])
            : BinaryPrimitives.ReadUInt16LittleEndian(bmp[(FileHeaderSize + 14)..]);

        if (bits is 1 or 4 or 8)
        {
            int colours = 0;
            if (!isCoreHeader && bmp.Length >= FileHeaderSize + 36)
                colours = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(bmp[(FileHeaderSize + 32)..]), 257u);
            if (colours == 0) colours = 1 << bits;
            return IsGreyRamp(bmp, FileHeaderSize + headerSize, isCoreHeader ? 3 : 4, colours) switch
            {
                true => colours == 2 ? PillowMode.Bilevel : PillowMode.L,
                false => PillowMode.P,
            };
        }

        if (bits == 32 && !isCoreHeader && bmp.Length >= FileHeaderSize + 20 &&
            BinaryPrimitives.ReadUInt32LittleEndian(bmp[(FileHeaderSize + 16)..]) == BitFields)
        {
            // Bit masks: inside V3+ headers (r, g, b, a at 40..52), after a 40-byte header (r, g, b only).
            int masks = FileHeaderSize + 40;
            if (bmp.Length < masks + 12) return PillowMode.Rgb;
            uint red = BinaryPrimitives.ReadUInt32LittleEndian(bmp[masks..]);
            uint green = BinaryPrimitives.ReadUInt32LittleEndian(bmp[(masks + 4)..]);
            uint blue = BinaryPrimitives.ReadUInt32LittleEndian(bmp[(masks + 8)..]);
            uint alpha = headerSize >= 56 && bmp.Length >= masks + 16
                ? BinaryPrimitives.ReadUInt32LittleEndian(bmp[(masks + 12)..])
                : 0;
            bool allZero = red == 0 && green == 0 && blue == 0 && alpha == 0; // Pillow reads that as BGRA
            return alpha != 0 || allZero ? PillowMode.Rgba : PillowMode.Rgb;
        }
        return PillowMode.Rgb;
    }

    /// <summary>Pillow's grey test: entry i is (i, i, i), or (0,0,0) and (255,255,255) for two colours.</summary>
    private static bool IsGreyRamp(ReadOnlySpan<byte> bmp, int paletteStart, int entrySize, int colours)
    {
        if (colours > 256) return false;
        for (int i = 0; i < colours; i++)
        {
            int expected = colours == 2 ? i * 255 : i;
            int at = paletteStart + i * entrySize;
            if (at + 3 > bmp.Length) return false;
            if (bmp[at] != expected || bmp[at + 1] != expected || bmp[at + 2] != expected) return false;
        }
        return true;
    }
}
