using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// Huffman decoding of DCT scans (T.81 F.2.2 and G.2): sequential (<c>jdhuff.c</c>) and the four progressive
/// kinds (<c>jdphuff.c</c>): DC first, DC refinement, AC first (spectral selection, EOB runs), AC refinement.
/// </summary>
/// <remarks>
/// Damaged data is handled as libjpeg does: when a decode needs bits from past the end of the segment (a marker
/// came too early) the MCU being decoded keeps what it got from zero bits, and every further MCU of the segment is
/// left untouched (zero coefficients for sequential scans: uniform grey) until a restart marker is read.
/// </remarks>
internal sealed class HuffmanScanDecoder : DctScanDecoder
{
    private enum Kind { Sequential, DcFirst, DcRefine, AcFirst, AcRefine }

    private readonly Kind kind;
    private readonly HuffmanTable?[] dcTables, acTables; // per scan component
    private readonly int[] lastDc;                        // DC predictions, per scan component
    private readonly int ss, se, al;
    private int eobRun;
    private bool outOfData;                               // libjpeg's insufficient_data

    public HuffmanScanDecoder(JpegScan scan, JpegFrame frame, JpegTables tables)
    {
        int n = scan.Components.Length;
        dcTables = new HuffmanTable[n];
        acTables = new HuffmanTable[n];
        lastDc = new int[n];
        ss = scan.Ss;
        se = scan.Se;
        al = scan.Al;
        if (frame.Process != JpegProcess.Progressive)
        {
            // Sequential: Ss, Se, Ah, Al should be 0, 63, 0, 0; libjpeg only warns and decodes the whole block.
            kind = Kind.Sequential;
            for (int i = 0; i < n; i++)
            {
                dcTables[i] = Table(tables, scan.DcTables[i], isDc: true);
                acTables[i] = Table(tables, scan.AcTables[i], isDc: false);
            }
            return;
        }
        bool dcBand = scan.Ss == 0;
        kind = (dcBand, scan.Ah == 0) switch
        {
            (true, true) => Kind.DcFirst,
            (true, false) => Kind.DcRefine,
            (false, true) => Kind.AcFirst,
            _ => Kind.AcRefine,
        };
        for (int i = 0; i < n; i++)
        {
            if (kind == Kind.DcFirst) dcTables[i] = Table(tables, scan.DcTables[i], isDc: true);
            if (!dcBand) acTables[i] = Table(tables, scan.AcTables[i], isDc: false);
        }
    }

    private static HuffmanTable Table(JpegTables tables, int id, bool isDc)
    {
        var spec = id < 4 ? (isDc ? tables.Dc : tables.Ac)[id] : null;
        if (spec is null)
            throw new JpegException($"corrupt JPEG: a scan uses {(isDc ? "DC" : "AC")} Huffman table {id}, which no DHT segment defines");
        return HuffmanTable.Build(spec, isDc);
    }

    public override bool OutOfData => outOfData;

    public override void Restart(ref EntropyReader reader, int expectedRestart)
    {
        reader.ReadRestartMarker(expectedRestart);
        Array.Clear(lastDc);
        eobRun = 0;
        // A restart marker found means fresh data; one left unread means the next segment is empty.
        if (reader.Marker == 0) outOfData = false;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public override void DecodeMcu(ref EntropyReader reader, McuBlocks blocks)
    {
        if (outOfData) return; // leave the MCU as it is (DC refinement would read only zero bits: no change either)
        switch (kind)
        {
            case Kind.Sequential:
                for (int b = 0; b < blocks.Count; b++)
                {
                    int member = blocks.Member[b];
                    DecodeSequentialBlock(ref reader, blocks.Block(b), dcTables[member]!, acTables[member]!, ref lastDc[member]);
                }
                break;
            case Kind.DcFirst:
                for (int b = 0; b < blocks.Count; b++)
                {
                    int member = blocks.Member[b];
                    int size = reader.DecodeSymbol(dcTables[member]!);
                    int diff = reader.ReceiveExtend(size);
                    long sum = (long)lastDc[member] + diff;
                    if (sum is > int.MaxValue or < int.MinValue)
                        throw new JpegException("corrupt JPEG: a DC coefficient overflows (libjpeg: DCT coefficient out of range)");
                    lastDc[member] = (int)sum;
                    blocks.Block(b)[0] = (short)(lastDc[member] << al);
                }
                break;
            case Kind.DcRefine:
                for (int b = 0; b < blocks.Count; b++)
                {
                    if (reader.ReadBit() != 0) blocks.Block(b)[0] |= (short)(1 << al);
                }
                break;
            case Kind.AcFirst:
                DecodeAcFirst(ref reader, blocks.Block(0), acTables[0]!);
                break;
            default:
                DecodeAcRefine(ref reader, blocks.Block(0), acTables[0]!);
                break;
        }
        if (reader.ReadPastData) outOfData = true;
    }

    /// <summary>One block of a sequential scan (T.81 F.2.2.1 and F.2.2.2). <paramref name="block"/> must start zeroed.</summary>
    /// <remarks>
    /// The hot loop of baseline decoding: the bit buffer lives in locals (refilled when fewer than 32 bits are
    /// left: enough for any code of ≤ 16 bits plus ≤ 15 magnitude bits), table lookups use masked indices.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void DecodeSequentialBlock(ref EntropyReader reader, Span<short> block, HuffmanTable dc, HuffmanTable ac, ref int lastDc)
    {
        const int lookahead = HuffmanTable.LookaheadBits, mask = (1 << lookahead) - 1;
        var (bits, count) = reader.Borrow();
        if (block.Length < 64) throw new ArgumentException("a block has 64 coefficients");
        ref short coefficients = ref MemoryMarshal.GetReference(block);
        ref byte natural = ref MemoryMarshal.GetArrayDataReference(ZigZag.Natural); // 80 entries: k never exceeds 63 + 15
        ref ushort dcLookup = ref MemoryMarshal.GetArrayDataReference(dc.Lookup);
        ref ushort acLookup = ref MemoryMarshal.GetArrayDataReference(ac.Lookup);
        ref int fastAc = ref MemoryMarshal.GetArrayDataReference(ac.FastAc!);

        if (count < 32) reader.Refill(ref bits, ref count);
        int size = DecodeSymbol(Unsafe.Add(ref dcLookup, (int)(bits >> (count - lookahead)) & mask), dc, bits, ref count);
        if (size != 0) lastDc += ReceiveExtend(bits, ref count, size); // wraps like libjpeg's int
        coefficients = (short)lastDc;

        for (int k = 1; k < 64; k++)
        {
            if (count < 32) reader.Refill(ref bits, ref count);
            int peek = (int)(bits >> (count - lookahead)) & mask;
            int fast = Unsafe.Add(ref fastAc, peek);
            if (fast != 0)
            {
                // Code and magnitude bits both within the lookahead: run, value and length from one lookup.
                count -= fast & 0xFF;
                k += (fast >> 8) & 15;
                Unsafe.Add(ref coefficients, Unsafe.Add(ref natural, k)) = (short)(fast >> 16);
                continue;
            }
            int symbol = DecodeSymbol(Unsafe.Add(ref acLookup, peek), ac, bits, ref count);
            int run = symbol >> 4;
            size = symbol & 15;
            if (size != 0)
            {
                k += run; // past 63 only on damaged data: natural[] maps the overshoot to 63
                Unsafe.Add(ref coefficients, Unsafe.Add(ref natural, k)) = (short)ReceiveExtend(bits, ref count, size);
            }
            else
            {
                if (run != 15) break; // end of block
                k += 15;              // ZRL: 16 zeros
            }
        }
        reader.Return(bits, count);
    }

    /// <summary>
    /// libjpeg's <c>HUFF_DECODE</c> on a borrowed bit buffer: the symbol whose code starts at the top of the
    /// <paramref name="count"/> valid bits of <paramref name="bits"/>, its code length taken off the count.
    /// <paramref name="entry"/> is the lookahead table's entry for those bits; 0 means the code is longer than the
    /// lookahead and is decoded bit-serially.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int DecodeSymbol(int entry, HuffmanTable table, ulong bits, ref int count)
    {
        if (entry != 0)
        {
            count -= entry >> 8;
            return entry & 0xFF;
        }
        var (symbol, length) = table.DecodeSlow((int)(bits >> (count - 16)) & 0xFFFF, HuffmanTable.LookaheadBits + 1);
        count -= length;
        return symbol;
    }

    /// <summary>RECEIVE + EXTEND (T.81 F.2.2.1) on a borrowed bit buffer: the next <paramref name="size"/> bits as a signed value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ReceiveExtend(ulong bits, ref int count, int size)
    {
        count -= size;
        return HuffmanTable.Extend((int)(bits >> count) & ((1 << size) - 1), size);
    }

    /// <summary>AC first scan: coefficients Ss..Se scaled by 2^Al, or a run of blocks with no coefficients in the band.</summary>
    private void DecodeAcFirst(ref EntropyReader reader, Span<short> block, HuffmanTable ac)
    {
        if (eobRun > 0)
        {
            eobRun--;
            return;
        }
        var natural = ZigZag.Natural;
        for (int k = ss; k <= se; k++)
        {
            int symbol = reader.DecodeSymbol(ac);
            int run = symbol >> 4, size = symbol & 15;
            if (size != 0)
            {
                k += run;
                block[natural[k]] = (short)(reader.ReceiveExtend(size) << al);
            }
            else if (run == 15)
            {
                k += 15;
            }
            else
            {
                // EOBr: this block and 2^r − 1 + (r appended bits) more end here.
                eobRun = (1 << run) - 1;
                if (run != 0) eobRun += reader.ReadBits(run);
                break;
            }
        }
    }

    /// <summary>
    /// AC refinement (T.81 G.1.2.3): one correction bit for every coefficient already nonzero, and new coefficients of
    /// magnitude 1 placed after the given run of still-zero ones.
    /// </summary>
    private void DecodeAcRefine(ref EntropyReader reader, Span<short> block, HuffmanTable ac)
    {
        var natural = ZigZag.Natural;
        int positive = 1 << al, negative = -1 << al;
        int k = ss;
        if (eobRun == 0)
        {
            for (; k <= se; k++)
            {
                int symbol = reader.DecodeSymbol(ac);
                int run = symbol >> 4, size = symbol & 15;
                int value = 0;
                if (size != 0)
                {
                    // size should be 1 (libjpeg warns otherwise and reads one sign bit regardless)
                    value = reader.ReadBit() != 0 ? positive : negative;
                }
                else if (run != 15)
                {
                    eobRun = 1 << run;
                    if (run != 0) eobRun += reader.ReadBits(run);
                    break;
                }
                // Skip `run` zero coefficients, refining the nonzero ones passed on the way.
                do
                {
                    ref short coefficient = ref block[natural[k]];
                    if (coefficient != 0)
                    {
                        Refine(ref reader, ref coefficient, positive, negative);
                    }
                    else
                    {
                        if (--run < 0) break;
                    }
                    k++;
                } while (k <= se);
                if (value != 0) block[natural[k]] = (short)value;
            }
        }
        if (eobRun > 0)
        {
            // Within an end-of-band run: only correction bits for the coefficients already nonzero.
            for (; k <= se; k++)
            {
                ref short coefficient = ref block[natural[k]];
                if (coefficient != 0) Refine(ref reader, ref coefficient, positive, negative);
            }
            eobRun--;
        }
    }

    private static void Refine(ref EntropyReader reader, ref short coefficient, int positive, int negative)
    {
        if (reader.ReadBit() != 0 && (coefficient & positive) == 0)
            coefficient += (short)(coefficient >= 0 ? positive : negative);
    }
}
