namespace ManagedClip.Imaging.Jpeg;

/// <summary>The blocks of one MCU: where each block's 64 coefficients live and which scan component it belongs to.</summary>
internal sealed class McuBlocks
{
    /// <summary>libjpeg's D_MAX_BLOCKS_IN_MCU.</summary>
    public const int MaxBlocks = 10;

    public readonly short[][] Arrays = new short[MaxBlocks][];
    public readonly int[] Offsets = new int[MaxBlocks];

    /// <summary>Index in the scan's component list of each block (libjpeg's <c>MCU_membership</c>).</summary>
    public readonly int[] Member = new int[MaxBlocks];

    public int Count;

    public Span<short> Block(int index) => Arrays[index].AsSpan(Offsets[index], 64);
}

/// <summary>
/// Where the restart markers fall in a scan: every <c>interval</c> MCUs (DRI; 0 for none) the decoder reads the
/// next RSTn, numbered 0..7 cyclically from each scan's start.
/// </summary>
internal struct RestartSchedule(int interval)
{
    private readonly int interval = interval;
    private int mcusToGo = interval, next;

    /// <summary>Before each MCU: at a restart point, has the decoder read the marker and reset its state.</summary>
    public void BeforeMcu(DctScanDecoder decoder, ref EntropyReader reader)
    {
        if (interval == 0) return;
        if (mcusToGo == 0)
        {
            decoder.Restart(ref reader, next);
            next = (next + 1) & 7;
            mcusToGo = interval;
        }
        mcusToGo--;
    }
}

/// <summary>Entropy decoding of one DCT scan, MCU by MCU (Huffman: <see cref="HuffmanScanDecoder"/>; arithmetic: <see cref="ArithmeticScanDecoder"/>).</summary>
internal abstract class DctScanDecoder
{
    /// <summary>libjpeg's <c>insufficient_data</c>: the segment's data ran out (Huffman only; arithmetic reads zeros legally).</summary>
    public virtual bool OutOfData => false;

    /// <summary>At a restart point: consumes the RSTn marker (or recovers) and resets the decoder's state.</summary>
    public abstract void Restart(ref EntropyReader reader, int expectedRestart);

    /// <summary>Decodes one MCU into <paramref name="blocks"/> (zeroed first for sequential scans).</summary>
    public abstract void DecodeMcu(ref EntropyReader reader, McuBlocks blocks);

    /// <summary>
    /// Checks a progressive scan's parameters (libjpeg's <c>start_pass</c> of <c>jdphuff.c</c> / <c>jdarith.c</c>) and
    /// records which coefficient bits each component now has (<paramref name="coefficientBits"/>: per component,
    /// 64 entries of the last Al, −1 for never; the second half of the array keeps the state before this scan).
    /// </summary>
    public static void StartProgressiveScan(JpegScan scan, int[][] coefficientBits, int componentCount, bool firstScan)
    {
        bool dcBand = scan.Ss == 0;
        bool bad = dcBand
            ? scan.Se != 0
            : scan.Ss > scan.Se || scan.Se > 63 || scan.Components.Length != 1;
        if (scan.Ah != 0 && scan.Al != scan.Ah - 1) bad = true;
        if (scan.Al > 13) bad = true;
        if (bad)
            throw new JpegException($"corrupt JPEG: invalid progressive scan (Ss={scan.Ss}, Se={scan.Se}, Ah={scan.Ah}, Al={scan.Al})");

        // Inconsistent progressions are only warnings in libjpeg; the bookkeeping matters for block smoothing.
        foreach (var component in scan.Components)
        {
            var bits = coefficientBits[component.Index];
            var previous = coefficientBits[component.Index + componentCount];
            for (int k = Math.Min(scan.Ss, 1); k <= Math.Max(scan.Se, 9); k++) previous[k] = firstScan ? 0 : bits[k];
            for (int k = scan.Ss; k <= scan.Se; k++) bits[k] = scan.Al;
        }
    }
}
