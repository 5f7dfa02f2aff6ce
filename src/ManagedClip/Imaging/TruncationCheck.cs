using System.Buffers.Binary;
using System.IO.Compression;

namespace ManagedClip.Imaging;

/// <summary>
/// Rejects image files that end before their pixel data does. ImageSharp decodes a cut-off file without complaint
/// (the missing rows come out black or grey), while Pillow raises "image file is truncated" (ImageFile.load: the
/// decoder still wants data at the end of the file); a silently half-black image would give a wrong embedding, so
/// these structural checks run before decoding. Each returns a description of the damage, or null. TIFF and WebP
/// are checked by <see cref="TiffHeader"/> and <see cref="WebpHeader"/>, which read those structures anyway; JPEG
/// truncation is the JPEG decoder's own check.
/// </summary>
internal static class TruncationCheck
{
    private const string Truncated = "image file is truncated";

    /// <summary>
    /// PNG: every chunk whole up to IEND, and the IDAT data inflating to every scanline the header implies (Pillow's
    /// decoder reads IDAT until all rows are filled; fewer rows is "image file is truncated").
    /// </summary>
    public static string? FindPngDamage(ReadOnlySpan<byte> png)
    {
        // Chunks: 4-byte big-endian length, 4-byte type, data, 4-byte CRC; the last one is IEND.
        int position = 8;
        var idat = new List<(int Offset, int Length)>();
        while (position + 8 <= png.Length)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(png[position..]);
            var type = System.Text.Encoding.ASCII.GetString(png.Slice(position + 4, 4));
            long remaining = png.Length - position - 12L;
            if (length > remaining)
                return $"truncated PNG: {Truncated} (chunk '{UserText.Quote(type)}' at byte {position:N0} declares {length:N0} bytes but only {Math.Max(remaining, 0):N0} follow)";
            if (type == "IDAT") idat.Add((position + 8, (int)length));
            if (type == "IEND") return FindPngShortData(png, idat);
            position += 12 + (int)length;
        }
        return $"truncated PNG: {Truncated} (the file ends after {png.Length:N0} bytes without an IEND chunk)";
    }

    private static string? FindPngShortData(ReadOnlySpan<byte> png, List<(int Offset, int Length)> idat)
    {
        if (png.Length < 33 || idat.Count == 0) return idat.Count == 0 ? "damaged PNG: no image data (IDAT chunk)" : null;
        var header = png.Slice(16, 13); // IHDR data: width, height, depth, colour type, compression, filter, interlace
        long width = BinaryPrimitives.ReadUInt32BigEndian(header), height = BinaryPrimitives.ReadUInt32BigEndian(header[4..]);
        int depth = header[8], channels = header[9] switch { 0 => 1, 2 => 3, 3 => 1, 4 => 2, 6 => 4, _ => 0 };
        if (channels == 0 || depth == 0) return null; // ImageSharp refuses these itself
        long needed = header[12] == 1 ? Adam7Bytes(width, height, channels * depth) : RowBytes(width, channels * depth) * height;

        var compressed = new MemoryStream(idat.Sum(c => c.Length));
        foreach (var (offset, length) in idat) compressed.Write(png.Slice(offset, length));
        compressed.Position = 0;
        long produced = 0;
        try
        {
            using var inflate = new ZLibStream(compressed, CompressionMode.Decompress);
            var scratch = new byte[1 << 16];
            while (produced < needed)
            {
                int read = inflate.Read(scratch, 0, (int)Math.Min(scratch.Length, needed - produced));
                if (read == 0) break;
                produced += read;
            }
        }
        catch (InvalidDataException)
        {
            // Past the last row Pillow stops reading, so a bad checksum after complete data does not matter.
            if (produced < needed) return $"damaged PNG: the compressed image data is invalid after {produced:N0} of {needed:N0} bytes";
        }
        return produced < needed
            ? $"truncated PNG: {Truncated} (the image data holds {produced:N0} of the {needed:N0} bytes its {width}x{height} header needs)"
            : null;
    }

    // One scanline: a filter byte, then the samples packed to whole bytes.
    private static long RowBytes(long width, int bitsPerPixel) => 1 + (width * bitsPerPixel + 7) / 8;

    private static long Adam7Bytes(long width, long height, int bitsPerPixel)
    {
        // Pass p starts at (x0, y0) and steps (dx, dy); empty passes have no scanlines at all.
        ReadOnlySpan<int> x0 = [0, 4, 0, 2, 0, 1, 0], y0 = [0, 0, 4, 0, 2, 0, 1], dx = [8, 8, 4, 4, 2, 2, 1], dy = [8, 8, 8, 4, 4, 2, 2];
        long total = 0;
        for (int p = 0; p < 7; p++)
        {
            long columns = (width - x0[p] + dx[p] - 1) / dx[p], rows = (height - y0[p] + dy[p] - 1) / dy[p];
            if (columns > 0 && rows > 0) total += RowBytes(columns, bitsPerPixel) * rows;
        }
        return total;
    }

    /// <summary>GIF: the first frame's data sub-blocks, and the empty block that ends them, lie inside the file.</summary>
    public static string? FindGifDamage(ReadOnlySpan<byte> gif)
    {
        long position = 13;
        if (gif.Length < position) return $"truncated GIF: {Truncated} (no screen descriptor)";
        if ((gif[10] & 0x80) != 0) position += 3L << ((gif[10] & 7) + 1);
        while (position < gif.Length)
        {
            byte introducer = gif[(int)position];
            if (introducer == 0x3B) return "damaged GIF: it holds no image";
            if (introducer == 0x21)
            {
                position = SkipSubBlocks(gif, position + 2);
                if (position < 0) return $"truncated GIF: {Truncated} (inside an extension block)";
                continue;
            }
            if (introducer != 0x2C) { position++; continue; } // Pillow skips stray bytes
            if (position + 10 > gif.Length) return $"truncated GIF: {Truncated} (image descriptor)";
            byte flags = gif[(int)position + 9];
            position += 10;
            if ((flags & 0x80) != 0) position += 3L << ((flags & 7) + 1);
            position = SkipSubBlocks(gif, position + 1); // after the LZW minimum code size
            return position < 0 ? $"truncated GIF: {Truncated} (the first frame's image data is cut off)" : null;
        }
        return $"truncated GIF: {Truncated} (no image before the end of the file)";
    }

    // Sub-blocks: a length byte, that many bytes, …, a zero-length block. Returns the position after it, or −1.
    private static long SkipSubBlocks(ReadOnlySpan<byte> data, long position)
    {
        while (position < data.Length)
        {
            int size = data[(int)position];
            position += 1 + size;
            if (size == 0) return position;
        }
        return -1;
    }

    /// <summary>
    /// BMP: uncompressed pixel rows inside the file; RLE data counted as Pillow 9.4's BmpRleDecoder counts it (pixels
    /// short of width × height is its "not enough image data").
    /// </summary>
    public static string? FindBmpDamage(ReadOnlySpan<byte> bmp)
    {
        if (bmp.Length < 30) return $"truncated BMP: {Truncated} (header)";
        long pixels = BinaryPrimitives.ReadUInt32LittleEndian(bmp[10..]);
        int headerSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(bmp[14..]);
        long width, height;
        int bits, compression = 0;
        if (headerSize == 12)
        {
            width = BinaryPrimitives.ReadUInt16LittleEndian(bmp[18..]);
            height = BinaryPrimitives.ReadUInt16LittleEndian(bmp[20..]);
            bits = BinaryPrimitives.ReadUInt16LittleEndian(bmp[24..]);
        }
        else
        {
            if (bmp.Length < 34) return $"truncated BMP: {Truncated} (header)";
            width = BinaryPrimitives.ReadInt32LittleEndian(bmp[18..]);
            height = Math.Abs((long)BinaryPrimitives.ReadInt32LittleEndian(bmp[22..]));
            bits = BinaryPrimitives.ReadUInt16LittleEndian(bmp[28..]);
            compression = (int)BinaryPrimitives.ReadUInt32LittleEndian(bmp[30..]);
        }
        if (width <= 0 || height <= 0 || pixels > bmp.Length) return pixels > bmp.Length ? $"truncated BMP: {Truncated} (the pixel data starts past the end)" : null;
        if (compression is 1 or 2) return FindBmpRleShortfall(bmp[(int)pixels..], width, height, rle4: compression == 2);
        if (compression is not (0 or 3 or 6)) return null; // JPEG/PNG inside BMP: ImageSharp refuses these itself
        long needed = (width * bits + 31) / 32 * 4 * height;
        return pixels + needed > bmp.Length
            ? $"truncated BMP: {Truncated} (its {width}x{height} pixels need {needed:N0} bytes from byte {pixels:N0}, the file has {bmp.Length:N0})"
            : null;
    }

    private static string? FindBmpRleShortfall(ReadOnlySpan<byte> data, long width, long height, bool rle4)
    {
        long total = width * height, produced = 0, x = 0;
        int at = 0;
        while (produced < total && at + 2 <= data.Length)
        {
            int count = data[at], value = data[at + 1];
            at += 2;
            if (count > 0)
            {
                long run = Math.Min(count, Math.Max(0, width - x)); // a run past the row end is cut, as Pillow does
                produced += run;
                x += run;
            }
            else if (value == 0) { produced += (width - produced % width) % width; x = 0; } // end of line
            else if (value == 1) break;                                                    // end of bitmap
            else if (value == 2)
            {
                if (at + 2 > data.Length) break;
                produced += data[at] + (long)data[at + 1] * width;
                at += 2;
                x = produced % width;
            }
            else
            {
                int bytes = rle4 ? value / 2 : value;
                if (at + bytes > data.Length) { produced += rle4 ? 2L * (data.Length - at) : data.Length - at; break; }
                produced += rle4 ? 2L * bytes : bytes;
                at += bytes;
                x += value;
                if ((at & 1) != 0) at++; // absolute runs are padded to 16 bits
            }
        }
        return produced < total
            ? $"truncated BMP: {Truncated} (the run-length data gives {produced:N0} of {total:N0} pixels)"
            : null;
    }

    /// <summary>TGA: raw pixels, or run-length packets counted to width × height pixels, inside the file.</summary>
    public static string? FindTgaDamage(ReadOnlySpan<byte> tga)
    {
        if (tga.Length < 18) return $"truncated TGA: {Truncated} (header)";
        int idLength = tga[0], colourMapType = tga[1], type = tga[2];
        int mapLength = BinaryPrimitives.ReadUInt16LittleEndian(tga[5..]), mapBits = tga[7];
        long width = BinaryPrimitives.ReadUInt16LittleEndian(tga[12..]), height = BinaryPrimitives.ReadUInt16LittleEndian(tga[14..]);
        int bytesPerPixel = (tga[16] + 7) / 8;
        long at = 18 + idLength + (colourMapType == 1 ? mapLength * ((mapBits + 7) / 8L) : 0);
        long total = width * height;
        if (at > tga.Length) return $"truncated TGA: {Truncated} (colour map)";
        if (type is 1 or 2 or 3)
        {
            long needed = total * bytesPerPixel;
            return at + needed > tga.Length
                ? $"truncated TGA: {Truncated} (its {width}x{height} pixels need {needed:N0} bytes, {tga.Length - at:N0} remain)"
                : null;
        }
        if (type is not (9 or 10 or 11) || bytesPerPixel == 0) return null;
        long produced = 0;
        while (produced < total && at < tga.Length)
        {
            int packet = tga[(int)at++];
            int count = (packet & 0x7F) + 1;
            at += (packet & 0x80) != 0 ? bytesPerPixel : (long)count * bytesPerPixel;
            if (at > tga.Length) break;
            produced += count;
        }
        return produced < total ? $"truncated TGA: {Truncated} (the run-length data gives {produced:N0} of {total:N0} pixels)" : null;
    }

    /// <summary>PBM/PGM/PPM: the raster (binary P4–P6) or enough samples (plain P1–P3) after the header.</summary>
    public static string? FindPnmDamage(ReadOnlySpan<byte> pnm)
    {
        if (pnm.Length < 3 || pnm[0] != (byte)'P' || pnm[1] is < (byte)'1' or > (byte)'6') return null;
        int kind = pnm[1] - '0';
        int fields = kind is 1 or 4 ? 2 : 3; // width, height[, maxval]
        var values = new long[3];
        int at = 2;
        for (int f = 0; f < fields; f++)
        {
            at = SkipPnmSpace(pnm, at);
            long value = 0;
            int start = at;
            while (at < pnm.Length && pnm[at] is >= (byte)'0' and <= (byte)'9' && value < int.MaxValue) value = value * 10 + (pnm[at++] - '0');
            if (at == start) return at >= pnm.Length ? $"truncated PNM: {Truncated} (header)" : null; // malformed: the decoder reports it
            values[f] = value;
        }
        long width = values[0], height = values[1], maxValue = values[2];
        int channels = kind is 3 or 6 ? 3 : 1;
        if (kind >= 4)
        {
            at++; // the single whitespace byte before the raster
            long needed = kind == 4 ? (width + 7) / 8 * height : width * height * channels * (maxValue > 255 ? 2 : 1);
            return at + needed > pnm.Length
                ? $"truncated PNM: {Truncated} (its {width}x{height} raster needs {needed:N0} bytes, {Math.Max(0, pnm.Length - at):N0} remain)"
                : null;
        }
        long samples = 0, wanted = width * height * channels;
        while (samples < wanted)
        {
            at = SkipPnmSpace(pnm, at);
            if (at >= pnm.Length) break;
            if (kind == 1) { at++; samples++; continue; } // plain PBM digits need no separators
            while (at < pnm.Length && !IsPnmSpace(pnm[at]) && pnm[at] != (byte)'#') at++;
            samples++;
        }
        return samples < wanted ? $"truncated PNM: {Truncated} (it holds {samples:N0} of {wanted:N0} samples)" : null;
    }

    private static bool IsPnmSpace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or 0x0B or 0x0C;

    // Whitespace and '#' comments (to the end of the line).
    private static int SkipPnmSpace(ReadOnlySpan<byte> pnm, int at)
    {
        while (at < pnm.Length)
        {
            if (IsPnmSpace(pnm[at])) at++;
            else if (pnm[at] == (byte)'#') { while (at < pnm.Length && pnm[at] is not ((byte)'\n' or (byte)'\r')) at++; }
            else break;
        }
        return at;
    }
}
