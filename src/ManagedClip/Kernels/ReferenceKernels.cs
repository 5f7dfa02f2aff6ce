namespace ManagedClip.Kernels;

/// <summary>
/// Every kernel as plain loops over plain indices, with the signature of the fast kernel it stands for: the
/// readable statement of what that kernel computes (llm.c keeps <c>matmul_forward_naive</c> beside its tiled GEMM
/// for the same reason). <see cref="KernelPath.Reference"/> selects them, for one call or, through
/// <see cref="KernelPaths.Use"/>, for a whole forward pass; the tests compare every fast path with them.
/// </summary>
/// <remarks>
/// Float32 throughout, summing in index order, with no blocking, packing, vectors or threads. The fast kernels
/// compute the same expressions in another order, so the two differ by rounding only.
/// </remarks>
internal static class ReferenceKernels
{
    /// <summary>y = x·Wᵀ + b, then the epilogue (<see cref="Gemm.Multiply(ReadOnlySpan{float}, int, WeightMatrix, ReadOnlySpan{float}, Span{float}, GemmEpilogue)"/>).</summary>
    /// <param name="x">[rows, inputs]</param>
    /// <param name="rowCount">rows</param>
    /// <param name="weight">W [outputs, inputs], wherever it is stored</param>
    /// <param name="bias">b [outputs], or empty</param>
    /// <param name="y">[rows, outputs]</param>
    /// <param name="epilogue">Store y, store GELU(y), or add y to what is there.</param>
    public static void Gemm(ReadOnlySpan<float> x, int rowCount, WeightMatrix weight, ReadOnlySpan<float> bias, Span<float> y,
        GemmEpilogue epilogue)
    {
        int outputs = weight.RowCount, inputs = weight.ColumnCount;
        for (int row = 0; row < rowCount; row++)
        for (int output = 0; output < outputs; output++)
        {
            float dot = 0;
            for (int input = 0; input < inputs; input++) dot += x[row * inputs + input] * weight.Element(output, input);
            float value = dot + (bias.IsEmpty ? 0 : bias[output]);
            ref float result = ref y[row * outputs + output];
            result = epilogue switch
            {
                GemmEpilogue.StoreGelu => Activations.Gelu(value),
                GemmEpilogue.AddToOutput => result + value,
                _ => value,
            };
        }
    }

    /// <summary>
    /// The int8 product (<see cref="GemmInt8"/>) as its definition. Each row of x: its outliers are found by the rule
    /// of <see cref="Int8Outliers"/> (written out again here, in float64) and set apart; the rest is quantized to uint8
    /// (the scalar formula of <see cref="Quantization"/>, written out again) with the range of the rest; then
    /// y = sx·sw·Σ (qx − z)·qw (the sum in int64) + Σ over the outliers of x[k]·sw·qw[n, k] + b, in float64 (rounded
    /// to float32 once), then the epilogue.
    /// </summary>
    /// <param name="x">[rows, inputs]</param>
    /// <param name="rowCount">rows</param>
    /// <param name="weight">W [outputs, inputs], an int8 weight (with its outlier rule, <see cref="WeightMatrix.Int8Outliers"/>)</param>
    /// <param name="bias">b [outputs], or empty</param>
    /// <param name="y">[rows, outputs]</param>
    /// <param name="epilogue">Store y, store GELU(y), or add y to what is there.</param>
    public static void GemmInt8(ReadOnlySpan<float> x, int rowCount, WeightMatrix weight, ReadOnlySpan<float> bias, Span<float> y,
        GemmEpilogue epilogue)
    {
        int outputs = weight.RowCount, inputs = weight.ColumnCount;
        var quantized = new int[inputs];
        for (int row = 0; row < rowCount; row++)
        {
            var input = x.Slice(row * inputs, inputs);
            double threshold = OutlierThreshold(input, weight.Int8Outliers);
            float min = 0, max = 0;
            bool finite = true;
            foreach (float value in input)
            {
                finite &= float.IsFinite(value);
                if (Math.Abs(value) > threshold) continue;
                min = Math.Min(min, value);
                max = Math.Max(max, value);
            }
            float scale = max > min ? (max - min) / 255 : 1, inverse = 1 / scale;
            int zeroPoint = (int)Math.Clamp(MathF.Round(-min * inverse), 0, 255);
            if (!finite) scale = float.NaN;
            for (int i = 0; i < inputs; i++)
                quantized[i] = Math.Abs(input[i]) > threshold ? zeroPoint : Math.Clamp((int)MathF.Round(input[i] * inverse) + zeroPoint, 0, 255);
            for (int output = 0; output < outputs; output++)
            {
                long dot = 0;
                double outlierSum = 0;
                for (int input2 = 0; input2 < inputs; input2++)
                {
                    dot += (long)(quantized[input2] - zeroPoint) * weight.QuantizedElement(output, input2);
                    if (Math.Abs(input[input2]) > threshold) outlierSum += (double)input[input2] * weight.QuantizedElement(output, input2);
                }
                float value = (float)(((double)scale * dot + outlierSum) * weight.ChannelScales[output] + (bias.IsEmpty ? 0 : bias[output]));
                ref float result = ref y[row * outputs + output];
                result = epilogue switch
                {
                    GemmEpilogue.StoreGelu => Activations.Gelu(value),
                    GemmEpilogue.AddToOutput => result + value,
                    _ => value,
                };
            }
        }
    }

    /// <summary>
    /// The magnitude above which a value of the row is an outlier (+∞: none, as for a row holding NaN or ±∞, or one
    /// whose sum of squares overflows float32): ratio × the RMS of the values within ratio × the row's RMS; if more
    /// than limit values exceed that, the (limit + 1)-th largest magnitude.
    /// </summary>
    private static double OutlierThreshold(ReadOnlySpan<float> row, Int8Outliers outliers)
    {
        if (outliers.Ratio <= 0) return double.PositiveInfinity;
        foreach (float value in row)
            if (!float.IsFinite(value)) return double.PositiveInfinity;
        // The kernel sums the squares in float32: a row whose sum overflows it has no finite threshold, so no outliers.
        if (Mean(row, double.PositiveInfinity) * row.Length > float.MaxValue) return double.PositiveInfinity;
        double first = outliers.Ratio * Math.Sqrt(Mean(row, double.PositiveInfinity));
        double threshold = outliers.Ratio * Math.Sqrt(Mean(row, first));
        var above = new List<double>();
        foreach (float value in row)
            if (Math.Abs(value) > threshold) above.Add(Math.Abs(value));
        if (above.Count == 0) return double.PositiveInfinity;
        if (above.Count <= outliers.Limit) return threshold;
        above.Sort();
        return above[above.Count - 1 - outliers.Limit];

        static double Mean(ReadOnlySpan<float> row, double limit)
        {
            double sum = 0;
            int count = 0;
            foreach (float value in row)
                if (Math.Abs(value) <= limit)
                {
                    sum += (double)value * value;
                    count++;
                }
            return sum / Math.Max(count, 1);
        }
    }

    /// <summary>
    /// LayerNorm of each row: (x − mean) / √(variance + eps) · γ + β
    /// (<see cref="LayerNorm.Apply(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{float}, float, Span{float}, int)"/>),
    /// with the mean and variance of the corrected two-pass algorithm: the deviations from a first estimate of the
    /// mean sum to its rounding error, which is added back (a constant row under BERT's eps 1e-12 would otherwise
    /// turn that error into output a million times larger).
    /// </summary>
    /// <param name="x">[rows, width]</param>
    /// <param name="gamma">γ [width]</param>
    /// <param name="beta">β [width]</param>
    /// <param name="eps">added to the variance</param>
    /// <param name="y">[rows, width]; may be <paramref name="x"/></param>
    /// <param name="width">width</param>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps,
        Span<float> y, int width)
    {
        for (int row = 0; row < x.Length / width; row++)
        {
            var input = x.Slice(row * width, width);
            var output = y.Slice(row * width, width);
            float mean = 0;
            for (int i = 0; i < width; i++) mean += input[i];
            mean /= width;
            float deviationSum = 0, squaredDeviationSum = 0;
            for (int i = 0; i < width; i++)
            {
                deviationSum += input[i] - mean;
                squaredDeviationSum += (input[i] - mean) * (input[i] - mean);
            }
            float correction = deviationSum / width;
            mean += correction;
            float variance = MathF.Max(0, squaredDeviationSum / width - correction * correction);
            float inverseDeviation = 1 / MathF.Sqrt(variance + eps);
            for (int i = 0; i < width; i++) output[i] = (input[i] - mean) * inverseDeviation * gamma[i] + beta[i];
        }
    }

    /// <summary>softmax(scale · row) in place: exp(scale·(x − max)) / Σ exp(scale·(x − max)) (<see cref="Softmax.Apply(Span{float})"/>).</summary>
    public static void Softmax(Span<float> row, float scale)
    {
        float max = float.NegativeInfinity;
        for (int i = 0; i < row.Length; i++) max = MathF.Max(max, row[i]);
        float sum = 0;
        for (int i = 0; i < row.Length; i++) sum += row[i] = MathF.Exp(scale * (row[i] - max));
        for (int i = 0; i < row.Length; i++) row[i] /= sum;
    }

    /// <summary>GELU(x) = x/2 · (1 + erf(x/√2)) in place (<see cref="Activations.Gelu(Span{float})"/>).</summary>
    public static void Gelu(Span<float> values)
    {
        for (int i = 0; i < values.Length; i++) values[i] = Activations.Gelu(values[i]);
    }

    /// <summary>
    /// Multi-head self-attention over one sequence, head by head and query by query
    /// (<see cref="Attention.SelfAttention(ReadOnlySpan{float}, int, int, int, Span{float}, int)"/>):
    /// out_h[t] = Σₛ softmax_s(q_h[t]·k_h[s] / √hs) · v_h[s] over the first <paramref name="keyCount"/> keys.
    /// </summary>
    /// <param name="qkv">[T, 3·nh·hs]: each row is q (all heads) | k | v, head-major inside each</param>
    /// <param name="tokenCount">T</param>
    /// <param name="headCount">nh</param>
    /// <param name="headSize">hs</param>
    /// <param name="output">[T, nh·hs]</param>
    /// <param name="keyCount">keys attended to, from the first</param>
    public static void Attention(ReadOnlySpan<float> qkv, int tokenCount, int headCount, int headSize, Span<float> output,
        int keyCount)
    {
        int width = headCount * headSize, stride = 3 * width;
        float scale = 1 / MathF.Sqrt(headSize);
        var weights = new float[keyCount]; // one query's attention weights over the keys
        for (int head = 0; head < headCount; head++)
        for (int t = 0; t < tokenCount; t++)
        {
            var query = qkv.Slice(t * stride + head * headSize, headSize);
            for (int s = 0; s < keyCount; s++)
            {
                var key = qkv.Slice(s * stride + width + head * headSize, headSize);
                float dot = 0;
                for (int d = 0; d < headSize; d++) dot += query[d] * key[d];
                weights[s] = dot;
            }
            Softmax(weights, scale);
            for (int d = 0; d < headSize; d++)
            {
                float sum = 0;
                for (int s = 0; s < keyCount; s++) sum += weights[s] * qkv[s * stride + 2 * width + head * headSize + d];
                output[t * width + head * headSize + d] = sum;
            }
        }
    }
}
