namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// A Huffman table ready for decoding (T.81 Annex C and F.2.2.3, libjpeg's <c>jpeg_make_d_derived_tbl</c>):
/// canonical codes from the DHT counts, <c>maxcode</c>/<c>valoffset</c> per code length for the bit-serial
/// decode, and lookahead tables that decode the common short codes from the next <see cref="LookaheadBits"/> bits.
/// </summary>
internal sealed class HuffmanTable
{
    /// <summary>Bits looked at in one table lookup.</summary>
    public const int LookaheadBits = 10;

    private const int LookaheadSize = 1 << LookaheadBits;

    /// <summary>Largest code of each length 1..16, −1 when there is none; [17] is a sentinel that ends the search.</summary>
    private readonly int[] maxCode = new int[18];

    /// <summary>Index in <see cref="symbols"/> of the first code of each length, minus that code.</summary>
    private readonly int[] valueOffset = new int[18];

    /// <summary>The symbols in code order; 256 entries, zero past the defined ones (as libjpeg's <c>huffval</c>).</summary>
    private readonly byte[] symbols = new byte[256];

    /// <summary>
    /// Indexed by the next <see cref="LookaheadBits"/> bits: <c>(length &lt;&lt; 8) | symbol</c> when a code of at most
    /// that many bits starts there, 0 when the code is longer.
    /// </summary>
    public readonly ushort[] Lookup = new ushort[LookaheadSize];

    /// <summary>
    /// AC tables only, indexed like <see cref="Lookup"/>: when a nonzero coefficient's code and its magnitude bits
    /// both fit in the lookahead, <c>(value &lt;&lt; 16) | (run &lt;&lt; 8) | bits used</c>; otherwise 0.
    /// </summary>
    public readonly int[]? FastAc;

    private HuffmanTable(bool isDc) => FastAc = isDc ? null : new int[LookaheadSize];

    /// <summary>Builds the decoding tables, rejecting what libjpeg rejects.</summary>
    /// <param name="spec">Code counts and symbols from DHT.</param>
    /// <param name="isDc">DC (or lossless) table: symbols are magnitude categories.</param>
    /// <param name="maxDcSymbol">Largest magnitude category a DC table may hold: 15 for DCT, 16 for lossless.</param>
    public static HuffmanTable Build(HuffmanSpec spec, bool isDc, int maxDcSymbol = 15)
    {
        var table = new HuffmanTable(isDc);
        int count = spec.Symbols.Length;
        spec.Symbols.CopyTo(table.symbols, 0);

        // Figure C.1 / C.2: code lengths in symbol order, then the canonical codes, checking that every code
        // still fits in its length (a table with too many short codes is not a prefix code).
        var lengths = new int[count];
        var codes = new int[count];
        for (int length = 1, p = 0; length <= 16; length++)
        {
            for (int i = 0; i < spec.Counts[length - 1]; i++) lengths[p++] = length;
        }
        if (count > 0)
        {
            int code = 0, size = lengths[0], p = 0;
            while (p < count)
            {
                while (p < count && lengths[p] == size) codes[p++] = code++;
                if (code >= 1 << size) throw Bad(isDc);
                code <<= 1;
                size++;
            }
        }

        // Figure F.15: maxcode and valoffset per length.
        for (int length = 1, p = 0; length <= 16; length++)
        {
            int n = spec.Counts[length - 1];
            if (n == 0)
            {
                table.maxCode[length] = -1;
                continue;
            }
            table.valueOffset[length] = p - codes[p];
            p += n;
            table.maxCode[length] = codes[p - 1];
        }
        table.maxCode[17] = int.MaxValue;

        // Lookahead: every bit pattern that starts with a short code.
        for (int p = 0; p < count && lengths[p] <= LookaheadBits; p++)
        {
            int shift = LookaheadBits - lengths[p];
            int first = codes[p] << shift;
            for (int fill = 0; fill < 1 << shift; fill++)
                table.Lookup[first + fill] = (ushort)((lengths[p] << 8) | spec.Symbols[p]);
        }

        if (isDc)
        {
            foreach (byte symbol in spec.Symbols)
            {
                if (symbol > maxDcSymbol) throw Bad(isDc);
            }
        }
        else
        {
            table.BuildFastAc();
        }
        return table;
    }

    private void BuildFastAc()
    {
        for (int bits = 0; bits < LookaheadSize; bits++)
        {
            int entry = Lookup[bits];
            if (entry == 0) continue;
            int length = entry >> 8, run = (entry >> 4) & 15, size = entry & 15;
            if (size == 0 || length + size > LookaheadBits) continue;
            int magnitude = (bits >> (LookaheadBits - length - size)) & ((1 << size) - 1);
            FastAc![bits] = (Extend(magnitude, size) << 16) | (run << 8) | (length + size);
        }
    }

    /// <summary>
    /// Decodes a code that is longer than the lookahead (or when fewer bits are known), bit-serially per
    /// Figure F.16 from <paramref name="minLength"/>. Returns the symbol and the bits the code used; a pattern
    /// that is no code gives symbol 0 after 17 bits, as libjpeg does ("corrupt JPEG data: bad Huffman code").
    /// </summary>
    public (int Symbol, int Length) DecodeSlow(int next16Bits, int minLength)
    {
        for (int length = minLength; length <= 16; length++)
        {
            int code = next16Bits >> (16 - length);
            if (code <= maxCode[length]) return (symbols[(valueOffset[length] + code) & 255], length);
        }
        return (0, 17);
    }

    /// <summary>T.81 Figure F.12: the <paramref name="size"/>-bit magnitude bits as a signed value.</summary>
    public static int Extend(int bits, int size) => bits < 1 << (size - 1) ? bits - (1 << size) + 1 : bits;

    private static JpegException Bad(bool isDc) =>
        new($"corrupt JPEG: a {(isDc ? "DC" : "AC")} Huffman table is not a valid code (libjpeg: bogus Huffman table definition)");
}
