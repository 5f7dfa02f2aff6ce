namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// Arithmetic decoding of DCT scans (T.81 F.2.4 and G.1.3; libjpeg's <c>jdarith.c</c>): the binary decisions of
/// Figures F.19–F.24 with their context-dependent statistics bins (Table F.4 for DC, F.5 for AC).
/// </summary>
/// <remarks>
/// Unlike Huffman data, reaching a marker inside the segment is legal: the decoder then reads zeros. A decoded
/// magnitude or run that cannot be right stops decoding until the next restart (libjpeg warns and does the same).
/// </remarks>
internal sealed class ArithmeticScanDecoder : DctScanDecoder
{
    private const int DcBins = 64, AcBins = 256;

    private enum Kind { Sequential, DcFirst, DcRefine, AcFirst, AcRefine }

    private readonly Kind kind;
    private readonly ArithmeticDecoder decoder = new();
    private readonly JpegScan scan;
    private readonly JpegTables tables;
    private readonly byte[][] dcStatistics = new byte[16][], acStatistics = new byte[16][];
    private readonly int[] lastDc, dcContext;  // per scan component
    private byte fixedBin = ArithmeticDecoder.FixedState;
    private bool broken;                        // libjpeg's ct == −1: stop until the next restart

    public ArithmeticScanDecoder(JpegScan scan, JpegFrame frame, JpegTables tables)
    {
        this.scan = scan;
        this.tables = tables;
        int n = scan.Components.Length;
        lastDc = new int[n];
        dcContext = new int[n];
        bool progressive = frame.Process == JpegProcess.Progressive;
        kind = !progressive ? Kind.Sequential : (scan.Ss == 0, scan.Ah == 0) switch
        {
            (true, true) => Kind.DcFirst,
            (true, false) => Kind.DcRefine,
            (false, true) => Kind.AcFirst,
            _ => Kind.AcRefine,
        };
        for (int i = 0; i < n; i++)
        {
            if (kind is Kind.Sequential or Kind.DcFirst)
            {
                int t = scan.DcTables[i];
                if (t >= 16) throw new JpegException($"corrupt JPEG: a scan uses arithmetic DC table {t} (only 0..15 exist)");
                dcStatistics[t] ??= new byte[DcBins];
            }
            if (kind is Kind.Sequential or Kind.AcFirst or Kind.AcRefine)
            {
                int t = scan.AcTables[i];
                if (t >= 16) throw new JpegException($"corrupt JPEG: a scan uses arithmetic AC table {t} (only 0..15 exist)");
                acStatistics[t] ??= new byte[AcBins];
            }
        }
        decoder.Reset();
    }

    public override void Restart(ref EntropyReader reader, int expectedRestart)
    {
        reader.ReadRestartMarker(expectedRestart);
        // The statistics of the tables this scan uses start again from state 0, MPS 0.
        for (int i = 0; i < scan.Components.Length; i++)
        {
            if (kind is Kind.Sequential or Kind.DcFirst)
            {
                Array.Clear(dcStatistics[scan.DcTables[i]]);
                lastDc[i] = 0;
                dcContext[i] = 0;
            }
            if (kind is Kind.Sequential or Kind.AcFirst or Kind.AcRefine) Array.Clear(acStatistics[scan.AcTables[i]]);
        }
        decoder.Reset();
        broken = false;
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    public override void DecodeMcu(ref EntropyReader reader, McuBlocks blocks)
    {
        switch (kind)
        {
            case Kind.Sequential:
                if (broken) return;
                for (int b = 0; b < blocks.Count && !broken; b++)
                {
                    int member = blocks.Member[b];
                    var block = blocks.Block(b);
                    if (!DecodeDc(ref reader, member)) return;
                    block[0] = (short)lastDc[member];
                    DecodeAc(ref reader, block, acStatistics[scan.AcTables[member]], 1, 63, 0, tables.AcThreshold[scan.AcTables[member]]);
                }
                break;
            case Kind.DcFirst:
                if (broken) return;
                for (int b = 0; b < blocks.Count; b++)
                {
                    int member = blocks.Member[b];
                    if (!DecodeDc(ref reader, member)) return;
                    blocks.Block(b)[0] = (short)(lastDc[member] << scan.Al);
                }
                break;
            case Kind.DcRefine:
                // libjpeg decodes these bits even after an error: the fixed-probability bin needs no statistics.
                for (int b = 0; b < blocks.Count; b++)
                {
                    if (decoder.Decode(ref reader, ref fixedBin) != 0) blocks.Block(b)[0] |= (short)(1 << scan.Al);
                }
                break;
            case Kind.AcFirst:
                if (broken) return;
                DecodeAc(ref reader, blocks.Block(0), acStatistics[scan.AcTables[0]], scan.Ss, scan.Se, scan.Al, tables.AcThreshold[scan.AcTables[0]]);
                break;
            default:
                if (broken) return;
                DecodeAcRefine(ref reader, blocks.Block(0), acStatistics[scan.AcTables[0]]);
                break;
        }
    }

    /// <summary>
    /// One DC difference (Figures F.19, F.21–F.24) added to the prediction modulo 2^16; the conditioning category for
    /// the next block follows from the magnitude and the DAC bounds L and U. False when the data is unusable.
    /// </summary>
    private bool DecodeDc(ref EntropyReader reader, int member)
    {
        int table = scan.DcTables[member];
        var bins = dcStatistics[table];
        int s = dcContext[member];
        if (decoder.Decode(ref reader, ref bins[s]) == 0)
        {
            dcContext[member] = 0;
            return true;
        }
        int sign = decoder.Decode(ref reader, ref bins[s + 1]);
        s += 2 + sign;
        int m = decoder.Decode(ref reader, ref bins[s]);
        if (m != 0)
        {
            s = 20; // X1
            while (decoder.Decode(ref reader, ref bins[s]) != 0)
            {
                if ((m <<= 1) == 0x8000)
                {
                    broken = true; // magnitude overflow
                    return false;
                }
                s++;
            }
        }
        if (m < (1 << tables.DcLower[table]) >> 1) dcContext[member] = 0;
        else if (m > (1 << tables.DcUpper[table]) >> 1) dcContext[member] = 12 + 4 * sign;
        else dcContext[member] = 4 + 4 * sign;
        int v = MagnitudeBits(ref reader, bins, s + 14, m, sign);
        lastDc[member] = (lastDc[member] + v) & 0xFFFF;
        return true;
    }

    /// <summary>
    /// Figure F.24: the bits below the leading one of the magnitude − 1 (whose category <paramref name="top"/> is
    /// decoded already), each with bin <paramref name="bin"/>; then the sign.
    /// </summary>
    private int MagnitudeBits(ref EntropyReader reader, byte[] bins, int bin, int top, int sign)
    {
        int v = top;
        for (int m = top >> 1; m != 0; m >>= 1)
        {
            if (decoder.Decode(ref reader, ref bins[bin]) != 0) v |= m;
        }
        v += 1;
        return sign != 0 ? -v : v;
    }

    /// <summary>AC coefficients <paramref name="start"/>..<paramref name="end"/> (Figure F.20), scaled by 2^<paramref name="al"/>.</summary>
    private void DecodeAc(ref EntropyReader reader, Span<short> block, byte[] bins, int start, int end, int al, int threshold)
    {
        var natural = ZigZag.Natural;
        for (int k = start; k <= end; k++)
        {
            int s = 3 * (k - 1);
            if (decoder.Decode(ref reader, ref bins[s]) != 0) break; // end of block
            while (decoder.Decode(ref reader, ref bins[s + 1]) == 0)
            {
                s += 3;
                if (++k > end)
                {
                    broken = true; // spectral overflow
                    return;
                }
            }
            int sign = decoder.Decode(ref reader, ref fixedBin);
            s += 2;
            int m = decoder.Decode(ref reader, ref bins[s]);
            if (m != 0 && decoder.Decode(ref reader, ref bins[s]) != 0)
            {
                m <<= 1;
                s = k <= threshold ? 189 : 217;
                while (decoder.Decode(ref reader, ref bins[s]) != 0)
                {
                    if ((m <<= 1) == 0x8000)
                    {
                        broken = true; // magnitude overflow
                        return;
                    }
                    s++;
                }
            }
            int v = MagnitudeBits(ref reader, bins, s + 14, m, sign);
            block[natural[k]] = (short)((uint)v << al);
        }
    }

    /// <summary>AC refinement (G.1.3.3): a correction bit per nonzero coefficient, new ±2^Al coefficients elsewhere.</summary>
    private void DecodeAcRefine(ref EntropyReader reader, Span<short> block, byte[] bins)
    {
        var natural = ZigZag.Natural;
        int positive = 1 << scan.Al, negative = -1 << scan.Al;
        // EOBx: the last coefficient made nonzero by earlier scans; no end-of-block decision before it.
        int previousEnd = scan.Se;
        while (previousEnd > 0 && block[natural[previousEnd]] == 0) previousEnd--;

        for (int k = scan.Ss; k <= scan.Se; k++)
        {
            int s = 3 * (k - 1);
            if (k > previousEnd && decoder.Decode(ref reader, ref bins[s]) != 0) break;
            while (true)
            {
                ref short coefficient = ref block[natural[k]];
                if (coefficient != 0)
                {
                    if (decoder.Decode(ref reader, ref bins[s + 2]) != 0)
                        coefficient += (short)(coefficient < 0 ? negative : positive);
                    break;
                }
                if (decoder.Decode(ref reader, ref bins[s + 1]) != 0)
                {
                    coefficient = (short)(decoder.Decode(ref reader, ref fixedBin) != 0 ? negative : positive);
                    break;
                }
                s += 3;
                if (++k > scan.Se)
                {
                    broken = true; // spectral overflow
                    return;
                }
            }
        }
    }
}
