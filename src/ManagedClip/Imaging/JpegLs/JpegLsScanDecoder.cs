namespace ManagedClip.Imaging.JpegLs;

/// <summary>One scan as the frame and scan headers describe it.</summary>
/// <param name="Components">Frame component index of each scan component, in scan order.</param>
/// <param name="Near">The largest reconstruction error (0: lossless).</param>
/// <param name="Interleave">0 none (one component), 1 line, 2 sample (T.87 C.2.3).</param>
/// <param name="RestartInterval">Lines between restart markers; 0: none.</param>
internal sealed record JpegLsScan(int[] Components, int Near, int Interleave, int RestartInterval);

/// <summary>
/// The JPEG-LS decoding procedure (T.87 Annex A, read from the decoder's side, §A.8 and Annex F): for each sample,
/// the causal neighbours
/// <code>
///   c b d        Ra = a (left), Rb = b (above), Rc = c (above left), Rd = d (above right)
///   a x
/// </code>
/// give the gradients D1 = Rd − Rb, D2 = Rb − Rc, D3 = Rc − Ra. All three within NEAR: <b>run mode</b> (A.7): runs
/// of Ra coded in segments of 2^J[RUNindex], ended by the line or by a run-interruption sample. Otherwise
/// <b>regular mode</b>: the gradients quantised to Q1..Q3 in −4..4 pick one of 365 contexts; the median edge
/// detector predicts x from a, b, c, the context's bias C corrects it, and the error is Golomb-Rice coded with k
/// from the context's A/N (A.3–A.6).
/// </summary>
/// <remarks>
/// Lines are kept in buffers of width + 2 entries: entry 0 and entry width + 1 are the edge neighbours (T.87 A.2.1:
/// Ra of the first sample is Rb, Rd of the last is Rb, Rc of the first is the first sample two lines up, and the
/// line above the first is zeros). After a restart marker the decoder starts as at the top of the image: zeros
/// above, fresh contexts, RUNindex 0.
/// </remarks>
internal sealed class JpegLsScanDecoder
{
    // J[RUNindex]: run segment lengths are 2^J (A.7.1.1).
    private static ReadOnlySpan<byte> J => [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 9, 10, 11, 12, 13, 14, 15];

    private readonly JpegLsParameters parameters;
    private readonly JpegLsContexts contexts;
    private readonly sbyte[] quantized; // [2·MAXVAL + 1]: Qi of gradient D at D + MAXVAL (A.3.3)
    private readonly int maxValue, near, step, range;
    private int runIndex;

    public JpegLsScanDecoder(JpegLsParameters parameters)
    {
        this.parameters = parameters;
        contexts = new JpegLsContexts(parameters);
        (maxValue, near, range) = (parameters.MaxValue, parameters.Near, parameters.Range);
        step = 2 * near + 1;
        quantized = new sbyte[2 * maxValue + 1];
        for (int d = -maxValue; d <= maxValue; d++) quantized[d + maxValue] = (sbyte)Quantize(d);
    }

    /// <summary>
    /// Decodes the scan that starts at <paramref name="start"/> into <paramref name="output"/>
    /// <c>[height, width, frameComponents]</c> and returns the position of the marker after it.
    /// </summary>
    public int Decode(ReadOnlySpan<byte> data, int start, JpegLsScan scan, ushort[] output, int width, int height, int frameComponents)
    {
        var reader = new JpegLsBitReader(data, start);
        int lineComponents = scan.Interleave == 2 ? 1 : scan.Components.Length;    // separate line buffers
        int samplesPerEntry = scan.Interleave == 2 ? scan.Components.Length : 1;  // samples per buffer entry
        int stride = (width + 2) * samplesPerEntry;
        var previous = new int[lineComponents][];
        var current = new int[lineComponents][];
        var runIndices = new int[lineComponents];
        for (int i = 0; i < lineComponents; i++) (previous[i], current[i]) = (new int[stride], new int[stride]);

        int restarts = 0;
        for (int y = 0; y < height; y++)
        {
            if (scan.RestartInterval > 0 && y > 0 && y % scan.RestartInterval == 0)
            {
                ReadRestartMarker(data, ref reader, restarts++ & 7, y, height);
                contexts.Reset();
                Array.Clear(runIndices);
                for (int i = 0; i < lineComponents; i++)
                {
                    Array.Clear(previous[i]);
                    Array.Clear(current[i]);
                }
            }

            for (int i = 0; i < lineComponents; i++)
            {
                (previous[i], current[i]) = (current[i], previous[i]);
                runIndex = runIndices[i];
                if (scan.Interleave == 2) DecodeSampleInterleavedLine(ref reader, previous[i], current[i], width, samplesPerEntry);
                else DecodeLine(ref reader, previous[i], current[i], width);
                runIndices[i] = runIndex;
            }
            if (reader.ReadPastData) throw JpegLsException.Truncated($"in line {y + 1} of {height} of a scan");

            // Line → output [y, x, component].
            for (int i = 0; i < lineComponents; i++)
                for (int s = 0; s < samplesPerEntry; s++)
                {
                    int outputIndex = y * width * frameComponents + scan.Components[i + s];
                    for (int x = 1; x <= width; x++, outputIndex += frameComponents)
                        output[outputIndex] = (ushort)current[i][x * samplesPerEntry + s];
                }
        }
        return reader.SkipToMarker();
    }

    /// <summary>The restart marker RSTm expected before line <paramref name="y"/> (zero-based).</summary>
    private static void ReadRestartMarker(ReadOnlySpan<byte> data, ref JpegLsBitReader reader, int m, int y, int height)
    {
        int at = reader.SkipToMarker();
        while (at + 1 < data.Length && data[at] == 0xFF && data[at + 1] == 0xFF) at++; // fill bytes
        if (at + 1 >= data.Length) throw JpegLsException.Truncated($"before line {y + 1} of {height}, where a restart marker belongs");
        if (data[at + 1] != 0xD0 + m)
            throw JpegLsException.Damaged($"expected restart marker RST{m} before line {y + 1} of {height}, found marker 0x{data[at + 1]:X2}");
        reader.Restart(at + 2);
    }

    // ---- one line of one component (interleave none or line) ----

    private void DecodeLine(ref JpegLsBitReader reader, int[] previous, int[] current, int width)
    {
        previous[width + 1] = previous[width];
        current[0] = previous[1];
        int x = 1;
        while (x <= width)
        {
            int ra = current[x - 1], rb = previous[x], rc = previous[x - 1], rd = previous[x + 1];
            int q = ContextOf(rd - rb, rb - rc, rc - ra);
            if (q != 0)
            {
                current[x] = DecodeRegular(ref reader, q, Predict(ra, rb, rc));
                x++;
                continue;
            }

            // Run mode: a run of Ra, then (unless the line ends) one interruption sample.
            int run = DecodeRunLength(ref reader, width - x + 1);
            Array.Fill(current, ra, x, run);
            x += run;
            if (x > width) break;
            current[x] = DecodeRunInterruption(ref reader, ra, previous[x], Math.Abs(ra - previous[x]) <= near ? 1 : 0);
            if (runIndex > 0) runIndex--;
            x++;
        }
    }

    // ---- one line of all components, sample-interleaved ----

    private void DecodeSampleInterleavedLine(ref JpegLsBitReader reader, int[] previous, int[] current, int width, int components)
    {
        for (int s = 0; s < components; s++)
        {
            previous[(width + 1) * components + s] = previous[width * components + s];
            current[s] = previous[components + s];
        }
        Span<int> q = stackalloc int[components];
        int x = 1;
        while (x <= width)
        {
            bool run = true;
            for (int s = 0; s < components; s++)
            {
                int at = x * components + s;
                int ra = current[at - components], rb = previous[at], rc = previous[at - components], rd = previous[at + components];
                q[s] = ContextOf(rd - rb, rb - rc, rc - ra);
                run &= q[s] == 0;
            }
            if (!run)
            {
                // Each sample in its own context (context 0 included: one component may be flat while another is not).
                for (int s = 0; s < components; s++)
                {
                    int at = x * components + s;
                    current[at] = DecodeRegular(ref reader, q[s], Predict(current[at - components], previous[at], previous[at - components]));
                }
                x++;
                continue;
            }

            // A run of whole pixels equal to the left pixel; the interruption codes each sample with RItype 0.
            int length = DecodeRunLength(ref reader, width - x + 1);
            for (int i = 0; i < length; i++)
                Array.Copy(current, (x - 1) * components, current, (x + i) * components, components);
            x += length;
            if (x > width) break;
            for (int s = 0; s < components; s++)
            {
                int at = x * components + s;
                current[at] = DecodeRunInterruption(ref reader, current[at - components], previous[at], 0);
            }
            if (runIndex > 0) runIndex--;
            x++;
        }
    }

    // ---- regular mode (A.3–A.6) ----

    /// <summary>Q = 81·Q1 + 9·Q2 + Q3, negative when the first non-zero Qi is (the sign flip of A.3.4).</summary>
    private int ContextOf(int d1, int d2, int d3) =>
        81 * quantized[d1 + maxValue] + 9 * quantized[d2 + maxValue] + quantized[d3 + maxValue];

    /// <summary>Gradient quantisation (A.3.3): regions bounded by NEAR, T1, T2, T3.</summary>
    private int Quantize(int d)
    {
        if (d <= -parameters.T3) return -4;
        if (d <= -parameters.T2) return -3;
        if (d <= -parameters.T1) return -2;
        if (d < -near) return -1;
        if (d <= near) return 0;
        if (d < parameters.T1) return 1;
        if (d < parameters.T2) return 2;
        if (d < parameters.T3) return 3;
        return 4;
    }

    /// <summary>The median edge detector (A.4.1): min or max of a and b at an edge, else the plane a + b − c.</summary>
    private static int Predict(int ra, int rb, int rc)
    {
        if (rc >= Math.Max(ra, rb)) return Math.Min(ra, rb);
        if (rc <= Math.Min(ra, rb)) return Math.Max(ra, rb);
        return ra + rb - rc;
    }

    private int DecodeRegular(ref JpegLsBitReader reader, int signedContext, int predicted)
    {
        int sign = signedContext >> 31; // 0 or −1
        int context = (signedContext ^ sign) - sign;

        // Prediction correction (A.4.2), clamped to the sample range.
        int corrected = Math.Clamp(predicted + ((contexts.Correction(context) ^ sign) - sign), 0, maxValue);

        int k = contexts.RegularK(context);
        int mapped = DecodeMappedError(ref reader, k, parameters.Limit);
        int error = (mapped >> 1) ^ -(mapped & 1);  // inverse of A.5.2: 0, −1, 1, −2, 2, …
        if (contexts.InvertedMapping(context, k)) error = ~error; // −1, 0, −2, 1, …
        contexts.UpdateRegular(context, error);
        return Reconstruct(corrected, (error ^ sign) - sign);
    }

    /// <summary>
    /// A Golomb code word of parameter k, limited to <paramref name="limit"/> bits (A.5.3): a unary prefix, then k
    /// bits; a prefix of LIMIT − qbpp − 1 zeros escapes to the value − 1 in qbpp bits.
    /// </summary>
    private int DecodeMappedError(ref JpegLsBitReader reader, int k, int limit)
    {
        int escape = limit - parameters.QuantizedBits - 1;
        int prefix = reader.ReadUnary(escape);
        if (prefix > escape)
            throw reader.ReadPastData ? JpegLsException.Truncated("inside a scan") : JpegLsException.Damaged("a Golomb code word longer than LIMIT");
        int value = prefix < escape ? (prefix << k) | reader.ReadBits(k) : reader.ReadBits(parameters.QuantizedBits) + 1;
        // A valid mapped error is below 2^(qbpp + 1); a larger one (possible with a damaged k) is not a sample error.
        if (value >= 2 << parameters.QuantizedBits) throw JpegLsException.Damaged("a prediction error outside the sample range");
        return value;
    }

    /// <summary>
    /// Rx = prediction + error·(2·NEAR + 1), brought back into range modulo RANGE·(2·NEAR + 1), then clamped (A.8,
    /// code segment A.16 read backwards).
    /// </summary>
    private int Reconstruct(int predicted, int error)
    {
        int value = predicted + error * step;
        if (value < -near) value += range * step;
        else if (value > maxValue + near) value -= range * step;
        return Math.Clamp(value, 0, maxValue);
    }

    // ---- run mode (A.7) ----

    /// <summary>
    /// The length of a run, at most <paramref name="remaining"/> (the rest of the line): each 1 bit is a full segment
    /// of 2^J[RUNindex] (RUNindex then grows), or the rest of the line when shorter; a 0 bit is followed by the
    /// length of the last, partial segment in J[RUNindex] bits.
    /// </summary>
    private int DecodeRunLength(ref JpegLsBitReader reader, int remaining)
    {
        int length = 0;
        while (reader.ReadBit() == 1)
        {
            int segment = 1 << J[runIndex];
            int taken = Math.Min(segment, remaining - length);
            length += taken;
            if (taken == segment && runIndex < J.Length - 1) runIndex++;
            if (length == remaining) return length;
        }
        length += reader.ReadBits(J[runIndex]);
        if (length > remaining)
            throw reader.ReadPastData
                ? JpegLsException.Truncated("inside a scan")
                : JpegLsException.Damaged($"a run of {length} samples where only {remaining} remain in the line");
        return length;
    }

    /// <summary>
    /// The sample that ends a run (A.7.2): predicted by Ra when Ra ≈ Rb (RItype 1), else by Rb with the sign of
    /// Rb − Ra; its error is coded in run-interruption context RItype with the limit shortened by J[RUNindex] + 1.
    /// </summary>
    private int DecodeRunInterruption(ref JpegLsBitReader reader, int ra, int rb, int type)
    {
        int k = contexts.RunInterruptionK(type);
        int mapped = DecodeMappedError(ref reader, k, parameters.Limit - J[runIndex] - 1);
        int error = contexts.RunInterruptionError(type, mapped, k);
        contexts.UpdateRunInterruption(type, error, mapped);
        return type == 1 ? Reconstruct(ra, error) : Reconstruct(rb, rb >= ra ? error : -error);
    }
}
