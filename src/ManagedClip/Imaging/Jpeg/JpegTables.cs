using System.Buffers.Binary;

namespace ManagedClip.Imaging.Jpeg;

/// <summary>A Huffman table as a DHT segment defines it: code counts per length 1..16, then the symbols.</summary>
internal sealed record HuffmanSpec(byte[] Counts, byte[] Symbols);

/// <summary>
/// The tables and settings the marker segments between SOI and a scan define (DQT, DHT, DAC, DRI, APP0 JFIF,
/// APP14 Adobe), parsed with libjpeg's checks (<c>jdmarker.c</c>). Tables may be redefined between scans.
/// </summary>
internal sealed class JpegTables
{
    /// <summary>Quantisation tables 0..3 in natural (row-major) order; null until defined.</summary>
    public readonly ushort[]?[] Quant = new ushort[4][];

    /// <summary>Huffman tables 0..3 of each class; null until defined.</summary>
    public readonly HuffmanSpec?[] Dc = new HuffmanSpec[4], Ac = new HuffmanSpec[4];

    /// <summary>Arithmetic conditioning (T.81 F.1.4.4): DC bounds L, U and the AC threshold Kx, per table 0..15.</summary>
    public readonly byte[] DcLower = new byte[16], DcUpper = new byte[16], AcThreshold = new byte[16];

    /// <summary>MCUs per restart interval (0: no restart markers).</summary>
    public int RestartInterval;

    public bool SawJfif, SawAdobe;

    public int AdobeTransform;

    public JpegTables()
    {
        // T.81 F.1.4.4.1.4 and F.1.4.4.2.1: the defaults when no DAC defines them.
        DcUpper.AsSpan().Fill(1);
        AcThreshold.AsSpan().Fill(5);
    }

    /// <summary>DQT: one or more tables, 8-bit (Pq = 0) or 16-bit (Pq = 1) entries in zigzag order.</summary>
    public void ReadQuantTables(ReadOnlySpan<byte> payload, bool bogusLength)
    {
        int p = 0;
        while (!bogusLength && p < payload.Length)
        {
            int precision = payload[p] >> 4, id = payload[p] & 15;
            if (id >= 4) throw new JpegException($"corrupt JPEG: DQT defines quantisation table {id} (only 0..3 exist)");
            int size = precision != 0 ? 128 : 64;
            if (payload.Length - p - 1 < size) break;
            var table = new ushort[64];
            for (int k = 0; k < 64; k++)
            {
                int value = precision != 0 ? BinaryPrimitives.ReadUInt16BigEndian(payload[(p + 1 + 2 * k)..]) : payload[p + 1 + k];
                table[ZigZag.Natural[k]] = (ushort)value;
            }
            Quant[id] = table;
            p += 1 + size;
        }
        if (bogusLength || p != payload.Length) throw new JpegException("corrupt JPEG: a DQT segment's length does not match its tables");
    }

    /// <summary>DHT: one or more tables, each a class/index byte, 16 counts and the symbols.</summary>
    public void ReadHuffmanTables(ReadOnlySpan<byte> payload, bool bogusLength)
    {
        int p = 0;
        while (!bogusLength && payload.Length - p > 16)
        {
            int index = payload[p];
            var counts = payload.Slice(p + 1, 16).ToArray();
            int total = 0;
            foreach (byte c in counts) total += c;
            p += 17;
            if (total > 256 || total > payload.Length - p)
                throw new JpegException("corrupt JPEG: a DHT segment declares more Huffman codes than it holds (or more than 256)");
            var symbols = payload.Slice(p, total).ToArray();
            p += total;
            int id = index & 0x0F;
            if ((index & ~0x1F) != 0 || id >= 4)
                throw new JpegException($"corrupt JPEG: DHT defines Huffman table 0x{index:X2} (only DC/AC tables 0..3 exist)");
            ((index & 0x10) != 0 ? Ac : Dc)[id] = new HuffmanSpec(counts, symbols);
        }
        if (bogusLength || p != payload.Length) throw new JpegException("corrupt JPEG: a DHT segment's length does not match its tables");
    }

    /// <summary>DAC: arithmetic conditioning values per table.</summary>
    public void ReadArithmeticConditioning(ReadOnlySpan<byte> payload, bool bogusLength)
    {
        if (bogusLength || payload.Length % 2 != 0)
            throw new JpegException("corrupt JPEG: a DAC segment's length is not a whole number of entries");
        for (int p = 0; p < payload.Length; p += 2)
        {
            int index = payload[p], value = payload[p + 1];
            if (index >= 32) throw new JpegException($"corrupt JPEG: DAC names table {index} (only 0..31 exist)");
            if (index >= 16)
            {
                AcThreshold[index - 16] = (byte)value;
            }
            else
            {
                DcLower[index] = (byte)(value & 15);
                DcUpper[index] = (byte)(value >> 4);
                if (DcLower[index] > DcUpper[index])
                    throw new JpegException($"corrupt JPEG: DAC gives DC table {index} a lower bound above its upper bound");
            }
        }
    }

    /// <summary>DRI: the restart interval in MCUs.</summary>
    public void ReadRestartInterval(ReadOnlySpan<byte> payload, bool bogusLength)
    {
        if (bogusLength || payload.Length != 2) throw new JpegException("corrupt JPEG: a DRI segment is not 4 bytes long");
        RestartInterval = BinaryPrimitives.ReadUInt16BigEndian(payload);
    }

    /// <summary>APP0 and APP14: only the JFIF and Adobe signatures matter (they decide the colour space).</summary>
    public void ExamineApplicationSegment(int marker, ReadOnlySpan<byte> payload)
    {
        // libjpeg looks at the first 14 (JFIF) or 12 (Adobe) bytes and needs all of them.
        if (marker == JpegMarker.App0 && payload.Length >= 14 && payload.StartsWith("JFIF\0"u8))
            SawJfif = true;
        if (marker == JpegMarker.App14 && payload.Length >= 12 && payload.StartsWith("Adobe"u8))
        {
            SawAdobe = true;
            AdobeTransform = payload[11];
        }
    }
}

/// <summary>The zigzag scan order (T.81 Figure A.6) as a map from zigzag index to natural (row-major) position.</summary>
internal static class ZigZag
{
    /// <summary>
    /// Natural position of zigzag index k. 16 extra entries map to 63, so a corrupt run that overshoots the end of
    /// the block lands on the last coefficient instead of outside it (as libjpeg's <c>jpeg_natural_order</c>).
    /// </summary>
    public static readonly byte[] Natural = Build();

    private static byte[] Build()
    {
        var order = new byte[64 + 16];
        int row = 0, column = 0;
        for (int k = 0; k < 64; k++)
        {
            order[k] = (byte)(row * 8 + column);
            // Walk the anti-diagonals, up-right on even ones (row + column even), down-left on odd ones.
            if ((row + column) % 2 == 0)
            {
                if (column == 7) row++;
                else if (row == 0) column++;
                else { row--; column++; }
            }
            else
            {
                if (row == 7) column++;
                else if (column == 0) row++;
                else { row++; column--; }
            }
        }
        order.AsSpan(64).Fill(63);
        return order;
    }
}
