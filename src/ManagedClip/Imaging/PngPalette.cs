using System.Buffers.Binary;

namespace ManagedClip.Imaging;

/// <summary>
/// A palette PNG without a PLTE chunk. The PNG specification requires one, ImageSharp refuses the file, but Pillow 9.4
/// opens it: the image keeps the palette every new "P" image starts with (libImaging Palette.c
/// <c>ImagingPaletteNew</c>: entry i is (i, i, i)). Giving the file that palette explicitly makes it decode as Pillow
/// shows it.
/// </summary>
internal static class PngPalette
{
    /// <summary>True for colour type 3 with no PLTE chunk before the first IDAT.</summary>
    public static bool LacksPalette(ReadOnlySpan<byte> png)
    {
        if (png.Length < 33 || png[25] != 3) return false; // IHDR's colour type
        for (int position = 8; position + 8 <= png.Length;)
        {
            long length = BinaryPrimitives.ReadUInt32BigEndian(png[position..]);
            var type = png.Slice(position + 4, 4);
            if (type.SequenceEqual("PLTE"u8)) return false;
            if (type.SequenceEqual("IDAT"u8)) return true;
            if (position + 12 + length > png.Length) return false;
            position += 12 + (int)length;
        }
        return false;
    }

    /// <summary>A copy of the file with a grey-ramp PLTE (2^depth entries) right after IHDR.</summary>
    public static byte[] WithGreyRamp(ReadOnlySpan<byte> png)
    {
        int entries = 1 << Math.Min((int)png[24], 8); // IHDR's bit depth
        var chunk = new byte[12 + 3 * entries];
        BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)(3 * entries));
        "PLTE"u8.CopyTo(chunk.AsSpan(4));
        for (int i = 0; i < entries; i++) chunk[8 + 3 * i] = chunk[9 + 3 * i] = chunk[10 + 3 * i] = (byte)i;
        BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + 3 * entries), Crc32(chunk.AsSpan(4, 4 + 3 * entries)));
        const int afterHeader = 33; // signature (8) + IHDR (12 + 13)
        var patched = new byte[png.Length + chunk.Length];
        png[..afterHeader].CopyTo(patched);
        chunk.CopyTo(patched.AsSpan(afterHeader));
        png[afterHeader..].CopyTo(patched.AsSpan(afterHeader + chunk.Length));
        return patched;
    }

    /// <summary>The chunk CRC of the PNG specification (ISO 3309 polynomial, reflected, bitwise).</summary>
    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }
}
