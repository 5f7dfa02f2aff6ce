namespace ManagedClip.Imaging.JpegLs;

/// <summary>
/// The preset coding parameters of an LSE marker segment (T.87 C.2.4.1.1): 0 means "the default".
/// </summary>
internal readonly record struct JpegLsPresets(int MaxValue, int T1, int T2, int T3, int Reset);

/// <summary>
/// The parameters one scan is coded with (T.87 A.2, C.2.4.1.1), derived from the sample precision P, the scan's
/// NEAR and the preset parameters; checked as the standard requires.
/// <code>
/// MAXVAL  largest sample value (2^P − 1 by default)
/// NEAR    largest reconstruction error (0: lossless)
/// RANGE   ⌊(MAXVAL + 2·NEAR) / (2·NEAR + 1)⌋ + 1: the number of quantised prediction errors
/// qbpp    ⌈log2 RANGE⌉: bits of an escaped error
/// bpp     max(2, ⌈log2 (MAXVAL + 1)⌉)
/// LIMIT   2·(bpp + max(8, bpp)): the longest Golomb code word
/// T1..T3  gradient thresholds; RESET: when the context counts are halved
/// </code>
/// </summary>
internal sealed class JpegLsParameters
{
    private const int BasicT1 = 3, BasicT2 = 7, BasicT3 = 21, DefaultReset = 64;

    public int MaxValue { get; }
    public int Near { get; }
    public int Range { get; }
    public int QuantizedBits { get; }
    public int Limit { get; }
    public int T1 { get; }
    public int T2 { get; }
    public int T3 { get; }
    public int Reset { get; }

    private JpegLsParameters(int maxValue, int near, int t1, int t2, int t3, int reset)
    {
        MaxValue = maxValue;
        Near = near;
        Range = (maxValue + 2 * near) / (2 * near + 1) + 1;
        QuantizedBits = CeilLog2(Range);
        int bitsPerSample = Math.Max(2, CeilLog2(maxValue + 1));
        Limit = 2 * (bitsPerSample + Math.Max(8, bitsPerSample));
        (T1, T2, T3, Reset) = (t1, t2, t3, reset);
    }

    /// <summary>
    /// The parameters for a scan of <paramref name="precision"/>-bit samples with <paramref name="near"/>, or the
    /// problem (in the user's terms) when the presets or NEAR are out of the standard's ranges.
    /// </summary>
    public static JpegLsParameters Create(int precision, int near, JpegLsPresets presets)
    {
        int largest = (1 << precision) - 1;
        int maxValue = presets.MaxValue == 0 ? largest : presets.MaxValue;
        if (maxValue < 1 || maxValue > largest)
            throw new JpegLsException($"JPEG-LS MAXVAL {maxValue} is outside 1..{largest} for {precision}-bit samples");
        if (near > Math.Min(255, maxValue / 2))
            throw new JpegLsException($"JPEG-LS NEAR {near} is larger than min(255, MAXVAL/2) = {Math.Min(255, maxValue / 2)}");

        // Default thresholds (C.2.4.1.1.1): scaled from the 8-bit values by MAXVAL, widened by NEAR.
        int t1, t2, t3;
        if (maxValue >= 128)
        {
            int factor = (Math.Min(maxValue, 4095) + 128) / 256;
            t1 = Clamp(factor * (BasicT1 - 2) + 2 + 3 * near, near + 1, maxValue);
            t2 = Clamp(factor * (BasicT2 - 3) + 3 + 5 * near, t1, maxValue);
            t3 = Clamp(factor * (BasicT3 - 4) + 4 + 7 * near, t2, maxValue);
        }
        else
        {
            int factor = 256 / (maxValue + 1);
            t1 = Clamp(Math.Max(2, BasicT1 / factor + 3 * near), near + 1, maxValue);
            t2 = Clamp(Math.Max(3, BasicT2 / factor + 5 * near), t1, maxValue);
            t3 = Clamp(Math.Max(4, BasicT3 / factor + 7 * near), t2, maxValue);
        }

        // Signalled values replace the defaults, each within the range the standard allows (C.2.4.1.1).
        if (presets.T1 != 0) t1 = Checked("T1", presets.T1, near + 1, maxValue);
        if (presets.T2 != 0) t2 = Checked("T2", presets.T2, t1, maxValue);
        if (presets.T3 != 0) t3 = Checked("T3", presets.T3, t2, maxValue);
        int reset = presets.Reset == 0 ? DefaultReset : Checked("RESET", presets.Reset, 3, Math.Max(255, maxValue));
        return new JpegLsParameters(maxValue, near, t1, t2, t3, reset);
    }

    // The standard's CLAMP(i, j, MAXVAL): a default out of [j, MAXVAL] falls back to j.
    private static int Clamp(int value, int low, int maxValue) => value > maxValue || value < low ? low : value;

    private static int Checked(string name, int value, int low, int high) =>
        value >= low && value <= high ? value : throw new JpegLsException($"JPEG-LS preset {name} = {value} is outside {low}..{high}");

    private static int CeilLog2(int value)
    {
        int bits = 0;
        while ((1 << bits) < value) bits++;
        return bits;
    }
}
