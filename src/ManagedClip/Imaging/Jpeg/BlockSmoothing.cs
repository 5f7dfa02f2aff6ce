namespace ManagedClip.Imaging.Jpeg;

/// <summary>
/// libjpeg's inter-block smoothing for progressive frames whose low-frequency coefficients are not all known to
/// full precision when output starts (<c>jdcoefct.c</c> <c>decompress_smooth_data</c>, libjpeg-turbo 2.1's 5×5
/// version): each of the first nine AC coefficients that is still zero is estimated from the DC values of the
/// block and its 24 neighbours; when no AC data has arrived at all, the DC value is smoothed too.
/// </summary>
/// <remarks>
/// A complete progressive file (every coefficient refined to Al = 0) never gets here, nor does any file in the
/// reference set; this is what libjpeg does with one whose last scans are missing. The neighbour rows and
/// columns are chosen exactly as libjpeg's sliding registers choose them, including their quirks near the
/// edges (a neighbour two rows away that lies in an iMCU row libjpeg does not look at is replaced by the nearer
/// one, and so on).
/// </remarks>
internal sealed class BlockSmoothing
{
    /// <summary>Coefficients whose state is tracked: the DC and the first nine AC in zigzag order.</summary>
    private const int SavedCoefficients = 10;

    /// <summary>Natural-order positions of zigzag coefficients 1..9 (AC01, AC10, AC20, AC11, AC02, AC03, AC12, AC21, AC30).</summary>
    private static readonly int[] Positions = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24];

    /// <summary>
    /// Estimation kernels on the 5×5 DC window (row-major: row −2 first, column −2 first), per zigzag coefficient
    /// 1..9: the first set when no AC data exists yet (Gaussian-like, DC interpolation on), the second otherwise
    /// (T.81 K.8 extended to 5×5). Index 0 of the first set is the DC estimate.
    /// </summary>
    private static readonly int[][] WithoutAc =
    [
        [-2, -6, -8, -6, -2, -6, 6, 42, 6, -6, -8, 42, 152, 42, -8, -6, 6, 42, 6, -6, -2, -6, -8, -6, -2],
        [-1, -1, 0, 1, 1, -3, 13, 0, -13, 3, -3, 38, 0, -38, 3, -3, 13, 0, -13, 3, -1, -1, 0, 1, 1],
        [-1, -3, -3, -3, -1, -1, 13, 38, 13, -1, 0, 0, 0, 0, 0, 1, -13, -38, -13, 1, 1, 3, 3, 3, 1],
        [0, 0, 1, 0, 0, 0, 2, 7, 2, 0, 0, -5, -14, -5, 0, 0, 2, 7, 2, 0, 0, 0, 1, 0, 0],
        [-1, 0, 0, 0, 1, 0, 9, 0, -9, 0, 0, 0, 0, 0, 0, 0, -9, 0, 9, 0, 1, 0, 0, 0, -1],
        [0, 0, 0, 0, 0, 0, 2, -5, 2, 0, 1, 7, -14, 7, 1, 0, 2, -5, 2, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, 0, -1, 0, 0, 2, 0, -2, 0, 0, 1, 0, -1, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, -3, 1, 0, 0, 0, 0, 0, 0, 0, -1, 3, -1, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, 0, -1, 0, 0, -3, 0, 3, 0, 0, 1, 0, -1, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1, 2, 1, 0, 0, 0, 0, 0, 0, 0, -1, -2, -1, 0, 0, 0, 0, 0, 0],
    ];

    private static readonly int[][] WithAc =
    [
        [],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -7, 50, 0, -50, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, -7, 0, 0, 0, 0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, -50, 0, 0, 0, 0, 7, 0, 0],
        [0, 0, -1, 0, 0, 0, 0, 13, 0, 0, 0, 0, -24, 0, 0, 0, 0, 13, 0, 0, 0, 0, -1, 0, 0],
        [0, -1, 0, 1, 0, -1, 10, 0, -10, 1, 0, 0, 0, 0, 0, 1, -10, 0, 10, -1, 0, 1, 0, -1, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1, 13, -24, 13, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ];

    private readonly JpegFrame frame;
    private readonly int[][] latched;         // per component: coefficient bits when output starts; then the state before the last scan
    private readonly int lastGoodMcuRow;
    private readonly short[] rowBuffer;       // one row of smoothed blocks

    private BlockSmoothing(JpegFrame frame, int[][] latched, int lastGoodMcuRow)
    {
        this.frame = frame;
        this.latched = latched;
        this.lastGoodMcuRow = lastGoodMcuRow;
        int widest = 0;
        foreach (var c in frame.Components) widest = Math.Max(widest, c.WidthInBlocks);
        rowBuffer = new short[widest * 64];
    }

    /// <summary>
    /// libjpeg's <c>smoothing_ok</c>: a progressive frame, every component's quantisation table latched with nonzero
    /// entries for the ten coefficients, every DC at least partly known, and some of AC 1..9 not yet exact.
    /// Returns null when smoothing does not apply.
    /// </summary>
    /// <param name="frame">The frame, every scan read.</param>
    /// <param name="coefficientBits">Per component the last Al of each coefficient (−1: never coded), then per component the state before the last scan touching it.</param>
    /// <param name="lastGoodMcuRow">The last iMCU row the final scan decoded before its data ran out.</param>
    /// <param name="scans">Scans read; with one, the "before" state is "never coded".</param>
    public static BlockSmoothing? Create(JpegFrame frame, int[][]? coefficientBits, int lastGoodMcuRow, int scans)
    {
        if (frame.Process != JpegProcess.Progressive || coefficientBits is null) return null;
        int n = frame.Components.Length;
        var latched = new int[2 * n][];
        bool useful = false;
        foreach (var c in frame.Components)
        {
            if (c.QuantValues is null) return null;
            foreach (int position in Positions)
            {
                if (c.QuantValues[position] == 0) return null;
            }
            var bits = coefficientBits[c.Index];
            if (bits[0] < 0) return null;
            var now = latched[c.Index] = new int[SavedCoefficients];
            var before = latched[c.Index + n] = new int[SavedCoefficients];
            now[0] = bits[0];
            for (int k = 1; k < SavedCoefficients; k++)
            {
                before[k] = scans > 1 ? coefficientBits[c.Index + n][k] : -1;
                now[k] = bits[k];
                if (bits[k] != 0) useful = true;
            }
        }
        return useful ? new BlockSmoothing(frame, latched, lastGoodMcuRow) : null;
    }

    /// <summary>
    /// Block row <paramref name="blockRow"/> (of <paramref name="blockRows"/> real ones) in iMCU row
    /// <paramref name="mcuRow"/> of component <paramref name="c"/>, smoothed: [WidthInBlocks, 64].
    /// </summary>
    public ReadOnlySpan<short> SmoothRow(FrameComponent c, int mcuRow, int blockRow, int blockRows)
    {
        int lastMcuRow = frame.McuRows - 1;
        int row = mcuRow * c.V + blockRow;
        // The five source rows, as libjpeg picks them.
        int previous = blockRow > 0 || mcuRow > 0 ? row - 1 : row;
        int previous2 = blockRow > 1 || mcuRow > 1 ? row - 2 : previous;
        int next = blockRow < blockRows - 1 || mcuRow < lastMcuRow ? row + 1 : row;
        int next2 = blockRow < blockRows - 2 || mcuRow + 1 < lastMcuRow ? row + 2 : next;
        ReadOnlySpan<int> rows = [previous2, previous, row, next, next2];

        // An incomplete last scan leaves rows past the damage with the precision of the scan before it.
        var bits = latched[c.Index + (mcuRow > lastGoodMcuRow ? frame.Components.Length : 0)];
        bool changeDc = true;
        for (int k = 1; k < SavedCoefficients; k++) changeDc &= bits[k] == -1;

        var quant = c.QuantValues!;
        long q00 = quant[0];
        var coefficients = c.Coefficients!;
        int last = c.WidthInBlocks - 1;
        Span<int> window = stackalloc int[25]; // DC values, [5 rows, 5 columns], column −2 first

        // libjpeg's sliding registers: all five columns start as column 0; column +1 is fetched only for the first
        // block, column +2 while it exists; each step shifts the registers left.
        for (int r = 0; r < 5; r++) window.Slice(5 * r, 5).Fill(coefficients[c.BlockOffset(0, rows[r])]);
        for (int column = 0; column <= last; column++)
        {
            for (int r = 0; r < 5; r++)
            {
                if (column == 0 && column < last) window[5 * r + 3] = coefficients[c.BlockOffset(1, rows[r])];
                if (column + 1 < last) window[5 * r + 4] = coefficients[c.BlockOffset(column + 2, rows[r])];
            }
            var block = rowBuffer.AsSpan(column * 64, 64);
            coefficients.AsSpan(c.BlockOffset(column, row), 64).CopyTo(block);
            for (int k = 1; k <= (changeDc ? 9 : 5); k++)
            {
                int al = bits[k];
                int position = Positions[k];
                if (al == 0 || block[position] != 0) continue;
                long num = q00 * Dot(changeDc ? WithoutAc[k] : WithAc[k], window);
                block[position] = (short)Estimate(num, quant[position], al);
            }
            if (changeDc) block[0] = (short)Estimate(q00 * Dot(WithoutAc[0], window), quant[0], 0);
            for (int r = 0; r < 5; r++) window.Slice(5 * r + 1, 4).CopyTo(window.Slice(5 * r, 4));
        }
        return rowBuffer.AsSpan(0, (last + 1) * 64);
    }

    private static long Dot(int[] kernel, ReadOnlySpan<int> window)
    {
        long sum = 0;
        for (int i = 0; i < 25; i++) sum += kernel[i] * window[i];
        return sum;
    }

    /// <summary>
    /// round(num / (Q · 256)) toward the nearer integer, magnitude limited to 2^Al − 1 when Al &gt; 0 (the estimate must
    /// not claim bits a later scan would have sent).
    /// </summary>
    private static int Estimate(long num, long q, int al)
    {
        long magnitude = ((q << 7) + Math.Abs(num)) / (q << 8);
        if (al > 0 && magnitude >= 1 << al) magnitude = (1 << al) - 1;
        return (int)(num >= 0 ? magnitude : -magnitude);
    }
}
