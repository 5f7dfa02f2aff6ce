namespace ManagedClip.Imaging.JpegLs;

/// <summary>
/// The adaptive state of LOCO-I (T.87 A.2, A.6, A.7.2): 365 regular contexts and the 2 run-interruption contexts,
/// with the statistics each keeps.
/// <code>
/// A[Q]   sum of |prediction error| seen in context Q (sets the Golomb parameter k)
/// B[Q]   sum of the (dequantised) errors: the bias, kept in (−N, 0]
/// C[Q]   the bias correction added to the prediction, −128..127
/// N[Q]   number of samples seen (halved with A and B when it reaches RESET)
/// Nn[i]  run interruption only: number of negative errors
/// </code>
/// Q = 81·Q1 + 9·Q2 + Q3 after the sign flip that makes the first non-zero Qi positive: 0..364.
/// </summary>
internal sealed class JpegLsContexts
{
    public const int RegularCount = 365;

    // A and B beyond this mean damaged data (a valid scan keeps them far smaller); it also keeps the sums in int.
    private const int StatisticsLimit = 1 << 24;

    private readonly JpegLsParameters parameters;
    private readonly int[] a = new int[RegularCount], b = new int[RegularCount], c = new int[RegularCount], n = new int[RegularCount];
    private readonly int[] runA = new int[2], runN = new int[2], runNn = new int[2];

    public JpegLsContexts(JpegLsParameters parameters)
    {
        this.parameters = parameters;
        Reset();
    }

    /// <summary>The initial state (A.2.1, step 1): at the start of a scan and after each restart marker.</summary>
    public void Reset()
    {
        int initialA = Math.Max(2, (parameters.Range + 32) / 64);
        Array.Fill(a, initialA);
        Array.Clear(b);
        Array.Clear(c);
        Array.Fill(n, 1);
        Array.Fill(runA, initialA);
        Array.Fill(runN, 1);
        Array.Clear(runNn);
    }

    /// <summary>The prediction correction C[Q].</summary>
    public int Correction(int context) => c[context];

    /// <summary>Golomb parameter k: the smallest k with N[Q]·2^k ≥ A[Q] (A.5.1, code segment A.10).</summary>
    public int RegularK(int context) => GolombK(n[context], a[context]);

    /// <summary>
    /// Whether the error mapping is inverted (A.5.2): lossless, k = 0 and a negative bias 2·B[Q] ≤ −N[Q], where a
    /// negative error is the likelier one.
    /// </summary>
    public bool InvertedMapping(int context, int k) => k == 0 && parameters.Near == 0 && 2 * b[context] <= -n[context];

    /// <summary>A.6.1 and A.6.2 (code segments A.12, A.13): the statistics after error <paramref name="error"/>.</summary>
    public void UpdateRegular(int context, int error)
    {
        int bias = b[context] + error * (2 * parameters.Near + 1);
        int sum = a[context] + Math.Abs(error);
        if (sum >= StatisticsLimit || Math.Abs(bias) >= StatisticsLimit)
            throw JpegLsException.Damaged("the prediction errors grow without bound");
        int count = n[context];
        if (count == parameters.Reset)
        {
            sum >>= 1;
            bias >>= 1;
            count >>= 1;
        }
        count++;
        a[context] = sum;
        n[context] = count;

        // Bias correction: keep B in (−N, 0] by moving C one step at a time.
        if (bias <= -count)
        {
            bias += count;
            if (c[context] > -128) c[context]--;
            if (bias <= -count) bias = -count + 1;
        }
        else if (bias > 0)
        {
            bias -= count;
            if (c[context] < 127) c[context]++;
            if (bias > 0) bias = 0;
        }
        b[context] = bias;
    }

    /// <summary>Golomb parameter of run-interruption context <paramref name="type"/> (RItype 0 or 1; A.7.2.1).</summary>
    public int RunInterruptionK(int type) => GolombK(runN[type], runA[type] + (runN[type] >> 1) * type);

    /// <summary>
    /// The error of a run-interruption sample from its mapped value (inverse of A.7.2.2, code segment A.21): the
    /// parity of EMErrval + RItype is the map bit, which says the sign together with k and Nn.
    /// </summary>
    public int RunInterruptionError(int type, int mapped, int k)
    {
        int value = mapped + type;
        int map = value & 1;
        int magnitude = (value + map) >> 1;
        bool negativeMapsToOne = k != 0 || 2 * runNn[type] >= runN[type];
        return (map == 1) == negativeMapsToOne ? -magnitude : magnitude;
    }

    /// <summary>A.7.2.3 (code segment A.23): the statistics after a run-interruption sample.</summary>
    public void UpdateRunInterruption(int type, int error, int mapped)
    {
        if (error < 0) runNn[type]++;
        runA[type] += (mapped + 1 - type) >> 1;
        if (runA[type] >= StatisticsLimit) throw JpegLsException.Damaged("the run-interruption errors grow without bound");
        if (runN[type] == parameters.Reset)
        {
            runA[type] >>= 1;
            runN[type] >>= 1;
            runNn[type] >>= 1;
        }
        runN[type]++;
    }

    private static int GolombK(int count, int sum)
    {
        int k = 0;
        while ((count << k) < sum) k++; // ends by k = 24: count ≥ 1 and sum < 2^24
        return k;
    }
}
