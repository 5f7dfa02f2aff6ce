using System.Buffers.Binary;
using System.IO.Compression;

namespace ManagedClip.Imaging;

/// <summary>
/// A small PNG encoder (ISO/IEC 15948) for 8-bit RGB images, e.g. the model's input from
/// <see cref="ImagePreprocessor.PreprocessToRgb(string, int)"/>. Lossless, so decoding the file gives the same bytes.
/// <code>
/// signature  89 50 4E 47 0D 0A 1A 0A
/// IHDR       width, height, bit depth 8, colour type 2 (truecolour), deflate, adaptive filtering, no interlace
/// IDAT       zlib stream of the rows, each preceded by its filter type (None, Sub, Up, Average or Paeth)
/// IEND
/// </code>
/// Each chunk is length(4, big endian), type(4), data, CRC-32 of type and data. A row's filter is the one with the
/// smallest sum of absolute residuals (as signed bytes), the usual heuristic of PNG encoders.
/// </summary>
public static class PngWriter
{
    private const int Channels = 3;

    /// <summary>Encodes an RGB image as a PNG file's bytes.</summary>
    /// <param name="rgb">uint8 [height, width, 3].</param>
    /// <param name="width">Pixels per row.</param>
    /// <param name="height">Rows.</param>
    public static byte[] EncodeRgb(ReadOnlySpan<byte> rgb, int width, int height)
    {
        using var buffer = new MemoryStream();
        WriteRgb(buffer, rgb, width, height);
        return buffer.ToArray();
    }

    /// <summary>Writes an RGB image as PNG to <paramref name="stream"/>.</summary>
    /// <param name="stream">Destination, written from its current position.</param>
    /// <param name="rgb">uint8 [height, width, 3].</param>
    /// <param name="width">Pixels per row.</param>
    /// <param name="height">Rows.</param>
    public static void WriteRgb(Stream stream, ReadOnlySpan<byte> rgb, int width, int height)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        if (rgb.Length != (long)width * height * Channels)
            throw new ArgumentException($"rgb must hold {width} x {height} x 3 bytes, got {rgb.Length}", nameof(rgb));

        stream.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);

        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], height);
        header[8] = 8;  // bits per sample
        header[9] = 2;  // colour type: truecolour
        header[10] = 0; // compression: deflate
        header[11] = 0; // filter method: adaptive (five filter types)
        header[12] = 0; // no interlace
        WriteChunk(stream, "IHDR"u8, header);
        WriteChunk(stream, "IDAT"u8, Compress(rgb, width, height));
        WriteChunk(stream, "IEND"u8, []);
    }

    /// <summary>The zlib stream of filtered rows: <c>[height, 1 + width · 3]</c> before compression.</summary>
    private static byte[] Compress(ReadOnlySpan<byte> rgb, int width, int height)
    {
        int stride = width * Channels;
        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.SmallestSize, leaveOpen: true))
        {
            var zeros = new byte[stride];
            var best = new byte[1 + stride];
            var candidate = new byte[1 + stride];
            for (int y = 0; y < height; y++)
            {
                var row = rgb.Slice(y * stride, stride);
                var above = y > 0 ? rgb.Slice((y - 1) * stride, stride) : zeros;
                long bestCost = long.MaxValue;
                for (byte filter = 0; filter <= 4; filter++)
                {
                    long cost = Filter(filter, row, above, candidate);
                    if (cost < bestCost)
                    {
                        bestCost = cost;
                        (best, candidate) = (candidate, best);
                    }
                }
                zlib.Write(best);
            }
        }
        return compressed.ToArray();
    }

    /// <summary>
    /// Filters one row into <paramref name="output"/> (filter type byte, then residuals) and returns the sum of the
    /// residuals' magnitudes as signed bytes. Bytes left of the row and the row above the first are 0.
    /// </summary>
    private static long Filter(byte filter, ReadOnlySpan<byte> row, ReadOnlySpan<byte> above, Span<byte> output)
    {
        output[0] = filter;
        long cost = 0;
        for (int i = 0; i < row.Length; i++)
        {
            int left = i >= Channels ? row[i - Channels] : 0;
            int up = above[i];
            int upLeft = i >= Channels ? above[i - Channels] : 0;
            int predicted = filter switch
            {
                0 => 0,
                1 => left,
                2 => up,
                3 => (left + up) >> 1,
                _ => Paeth(left, up, upLeft),
            };
            byte residual = (byte)(row[i] - predicted);
            output[1 + i] = residual;
            cost += Math.Abs((int)(sbyte)residual); // widened first: |−128| does not fit in a signed byte
        }
        return cost;
    }

    /// <summary>The Paeth predictor: whichever of left, up, upper-left is closest to left + up − upper-left.</summary>
    private static int Paeth(int left, int up, int upLeft)
    {
        int estimate = left + up - upLeft;
        int toLeft = Math.Abs(estimate - left), toUp = Math.Abs(estimate - up), toUpLeft = Math.Abs(estimate - upLeft);
        if (toLeft <= toUp && toLeft <= toUpLeft) return left;
        return toUp <= toUpLeft ? up : upLeft;
    }

    private static void WriteChunk(Stream stream, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        stream.Write(word);
        stream.Write(type);
        stream.Write(data);
        uint crc = Crc32.Update(Crc32.Update(0xFFFF_FFFF, type), data) ^ 0xFFFF_FFFF;
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        stream.Write(word);
    }

    /// <summary>CRC-32 of PNG chunks (ISO 3309; reflected polynomial 0xEDB88320), one table lookup per byte.</summary>
    private static class Crc32
    {
        private static readonly uint[] Table = BuildTable();

        public static uint Update(uint crc, ReadOnlySpan<byte> data)
        {
            foreach (byte b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
            return crc;
        }

        private static uint[] BuildTable()
        {
            var table = new uint[256];
            for (uint n = 0; n < 256; n++)
            {
                uint c = n;
                for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1;
                table[n] = c;
            }
            return table;
        }
    }
}
