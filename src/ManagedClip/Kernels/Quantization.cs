using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ManagedClip.Kernels;

/// <summary>
/// The number formats of the reduced-precision GEMMs, one conversion each:
/// <list type="bullet">
/// <item>bfloat16: the top 16 bits of a float32 (sign, the 8 exponent bits, 7 mantissa bits), rounded to nearest
/// even. Widening back is a 16-bit shift, exact.</item>
/// <item>int8 weights, symmetric per output channel: w ≈ s·q, s = max|w| / 127, q = round(w / s) in [−127, 127]; or
/// with 63 for 127 (7 bits) for the vpmaddubsw kernel (<see cref="GemmInt8"/>).</item>
/// <item>uint8 activations, asymmetric per row (ONNX DynamicQuantizeLinear): x ≈ s·(q − z), with the range widened to
/// include 0 so that 0 is exact, s = (max − min) / 255, z = round(−min / s), q = clamp(round(x / s) + z, 0, 255).</item>
/// </list>
/// </summary>
/// <remarks>
/// Rounding is to nearest even everywhere (MathF.Round and the vector conversion in its default mode agree), and the
/// activation path multiplies by 1/s in both the scalar and the vector loop, so every path quantizes a row to the
/// same bytes: int8 results then agree across machines bit for bit.
/// </remarks>
internal static class Quantization
{
    /// <summary>The largest int8 weight magnitude (−128 is left out so the range is symmetric).</summary>
    public const int WeightLevels = 127;

    /// <summary>
    /// The largest 7-bit weight magnitude: with it two products of vpmaddubsw, 2·255·63 = 32 130, stay inside int16.
    /// </summary>
    public const int SevenBitWeightLevels = 63;

    /// <summary>The largest uint8 activation.</summary>
    public const int ActivationLevels = 255;

    /// <summary>float32 → bfloat16, round to nearest even; NaN stays NaN (quiet), infinities stay infinite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFF) > 0x7F80_0000) return (ushort)((bits >> 16) | 0x0040); // NaN: keep it a NaN
        bits += 0x7FFF + ((bits >> 16) & 1); // ties go to the even upper half
        return (ushort)(bits >> 16);
    }

    /// <summary>bfloat16 → float32, exact.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromBFloat16(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);

    /// <summary>
    /// One weight row w [K] to int8 q [K] with w ≈ scale·q, |q| ≤ <paramref name="levels"/> (127; 63 for the vpmaddubsw
    /// kernel, see <see cref="GemmInt8"/>); returns the scale (1 for an all-zero row, whose q are 0).
    /// </summary>
    public static float QuantizeWeightRow(ReadOnlySpan<float> row, Span<sbyte> quantized, int levels = WeightLevels)
    {
        float largest = 0;
        foreach (float w in row)
        {
            if (!float.IsFinite(w)) throw new InvalidDataException("a weight is NaN or infinite and cannot be quantized to int8");
            largest = Math.Max(largest, Math.Abs(w));
        }
        float scale = largest > 0 ? largest / levels : 1;
        float inverse = 1 / scale;
        for (int k = 0; k < row.Length; k++)
            quantized[k] = (sbyte)Math.Clamp(MathF.Round(row[k] * inverse), -levels, levels);
        return scale;
    }

    /// <summary>
    /// One activation row x [K] to uint8 q [K] with x ≈ scale·(q − zeroPoint). A row holding NaN or infinity gives
    /// a NaN scale, so the product's outputs for that row are NaN (as float32 arithmetic would give), not garbage.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe (float Scale, int ZeroPoint) QuantizeActivationRow(float* row, int length, byte* quantized)
    {
        var (scale, zeroPoint, _) = QuantizeActivationRow(row, length, quantized, default, null, null);
        return (scale, zeroPoint);
    }

    /// <summary>
    /// As the overload above, but first takes the row's outlier values out (see <see cref="Int8Outliers"/>): their
    /// columns k, ascending, go to <paramref name="outlierColumns"/> and their values to <paramref name="outlierValues"/>
    /// (at most <see cref="Int8Outliers.Limit"/> of each); they are quantized as 0 (q = zeroPoint) and the scale is
    /// set by the rest of the row. The caller adds Σ x[k]·W[n, k] over them in float32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe (float Scale, int ZeroPoint, int OutlierCount) QuantizeActivationRow(float* row, int length, byte* quantized,
        Int8Outliers outliers, int* outlierColumns, float* outlierValues)
    {
        var (min, max) = Range(row, length, float.PositiveInfinity);
        if (!float.IsFinite(max - min))
        {
            new Span<byte>(quantized, length).Clear();
            return (float.NaN, 0, 0);
        }
        int outlierCount = 0;
        float threshold = float.PositiveInfinity;
        if (outliers.Ratio > 0)
        {
            threshold = OutlierThreshold(row, length, outliers);
            if (threshold < float.PositiveInfinity)
            {
                (min, max) = Range(row, length, threshold);
                outlierCount = Above(row, length, threshold, outlierColumns);
                for (int o = 0; o < outlierCount; o++) outlierValues[o] = row[outlierColumns[o]];
            }
        }
        float scale = max > min ? (max - min) / ActivationLevels : 1;
        float inverse = 1 / scale;
        int zeroPoint = (int)Math.Clamp(MathF.Round(-min * inverse), 0, ActivationLevels);
        int i = 0;
        if (Avx2.IsSupported)
        {
            var inverses = Vector256.Create(inverse);
            var zero = Vector256.Create(zeroPoint);
            var top = Vector256.Create(ActivationLevels);
            for (; i + 16 <= length; i += 16)
            {
                // vcvtps2dq rounds to nearest even, as MathF.Round does below; the clamped values fit a byte, so
                // narrowing 32 → 16 → 8 bits keeps them exactly.
                var low = Vector256.Min(Vector256.Max(Avx.ConvertToVector256Int32(Vector256.Load(row + i) * inverses) + zero, Vector256<int>.Zero), top);
                var high = Vector256.Min(Vector256.Max(Avx.ConvertToVector256Int32(Vector256.Load(row + i + 8) * inverses) + zero, Vector256<int>.Zero), top);
                var words = Vector256.Narrow(low.AsUInt32(), high.AsUInt32()); // 16 values, in order
                Vector256.Narrow(words, words).GetLower().Store(quantized + i);
            }
        }
        for (; i < length; i++)
            quantized[i] = (byte)Math.Clamp((int)MathF.Round(row[i] * inverse) + zeroPoint, 0, ActivationLevels);
        for (int o = 0; o < outlierCount; o++) quantized[outlierColumns[o]] = (byte)zeroPoint; // 0 exactly: computed apart
        return (scale, zeroPoint, outlierCount);
    }

    /// <summary>
    /// The magnitude above which a value of the row is an outlier (<see cref="Int8Outliers"/>), or +∞ for a row without
    /// outliers: ratio × the RMS of the row's values below ratio × the row's RMS (the second estimate leaves out the
    /// outliers that inflate the first), raised to the (limit + 1)-th largest magnitude if more than limit exceed it.
    /// A row whose sum of squares overflows float32 gets +∞ (the second pass then counts every value), so it is
    /// quantized whole, as without the rule.
    /// </summary>
    private static unsafe float OutlierThreshold(float* row, int length, Int8Outliers outliers)
    {
        var (sum, count) = SumOfSquares(row, length, float.PositiveInfinity);
        float threshold = outliers.Ratio * MathF.Sqrt(sum / count);
        (sum, count) = SumOfSquares(row, length, threshold);
        if (count == length) return float.PositiveInfinity; // nothing above the first estimate: nothing above the second either
        threshold = outliers.Ratio * MathF.Sqrt(sum / Math.Max(count, 1));
        int above = Above(row, length, threshold, null);
        if (above == 0) return float.PositiveInfinity;
        if (above <= outliers.Limit) return threshold;
        // Too many: take out the Limit largest (values tied at the cut all stay in, so fewer may be taken out).
        Span<float> magnitudes = above <= 1024 ? stackalloc float[above] : new float[above];
        for (int k = 0, j = 0; k < length; k++)
            if (Math.Abs(row[k]) > threshold) magnitudes[j++] = Math.Abs(row[k]);
        magnitudes.Sort();
        return magnitudes[above - 1 - outliers.Limit];
    }

    /// <summary>
    /// How many values of the row have |x| &gt; <paramref name="threshold"/>; their columns, ascending, go to
    /// <paramref name="columns"/> unless it is null. Eight at a time: a block without one costs one compare.
    /// </summary>
    private static unsafe int Above(float* row, int length, float threshold, int* columns)
    {
        int count = 0, k = 0;
        var thresholds = Vector256.Create(threshold);
        for (; k + 8 <= length; k += 8)
        {
            uint mask = Vector256.GreaterThan(Vector256.Abs(Vector256.Load(row + k)), thresholds).ExtractMostSignificantBits();
            if (mask == 0) continue;
            if (columns == null)
            {
                count += System.Numerics.BitOperations.PopCount(mask);
                continue;
            }
            for (; mask != 0; mask &= mask - 1)
                columns[count++] = k + System.Numerics.BitOperations.TrailingZeroCount(mask);
        }
        for (; k < length; k++)
            if (Math.Abs(row[k]) > threshold)
            {
                if (columns != null) columns[count] = k;
                count++;
            }
        return count;
    }

    /// <summary>
    /// Σ x² and the count over the values with |x| ≤ <paramref name="limit"/>, in eight float32 lanes combined in order
    /// and then the tail: the same order on every machine (without SIMD the Vector256 operations run in software with
    /// the same per-lane rounding), so every machine finds the same outliers.
    /// </summary>
    private static unsafe (float Sum, int Count) SumOfSquares(float* row, int length, float limit)
    {
        var sums = Vector256<float>.Zero;
        var counts = Vector256<int>.Zero;
        var limits = Vector256.Create(limit);
        int k = 0;
        for (; k + 8 <= length; k += 8)
        {
            var values = Vector256.Load(row + k);
            var kept = Vector256.LessThanOrEqual(Vector256.Abs(values), limits);
            sums += Vector256.ConditionalSelect(kept, values * values, Vector256<float>.Zero);
            counts -= kept.AsInt32(); // a kept lane is −1
        }
        float sum = 0;
        int count = 0;
        for (int j = 0; j < 8; j++)
        {
            sum += sums.GetElement(j);
            count += counts.GetElement(j);
        }
        for (; k < length; k++)
            if (Math.Abs(row[k]) <= limit)
            {
                sum += row[k] * row[k];
                count++;
            }
        return (sum, count);
    }

    /// <summary>
    /// min(0, x) and max(0, x) over the values of the row with |x| ≤ <paramref name="limit"/>; NaN if the row holds a
    /// NaN (checked apart: vminps does not carry it).
    /// </summary>
    private static unsafe (float Min, float Max) Range(float* row, int length, float limit)
    {
        float min = 0, max = 0; // the range always includes 0
        int k = 0;
        if (Vector256.IsHardwareAccelerated && length >= 8)
        {
            Vector256<float> mins = Vector256<float>.Zero, maxes = Vector256<float>.Zero;
            var numbers = Vector256<int>.AllBitsSet; // lanes that have seen no NaN
            var limits = Vector256.Create(limit);
            for (; k + 8 <= length; k += 8)
            {
                var values = Vector256.Load(row + k);
                values = Vector256.ConditionalSelect(Vector256.GreaterThan(Vector256.Abs(values), limits), Vector256<float>.Zero, values);
                mins = Vector256.Min(mins, values);
                maxes = Vector256.Max(maxes, values);
                numbers &= Vector256.Equals(values, values).AsInt32();
            }
            if (numbers != Vector256<int>.AllBitsSet) return (float.NaN, float.NaN);
            for (int j = 0; j < 8; j++)
            {
                min = Math.Min(min, mins.GetElement(j));
                max = Math.Max(max, maxes.GetElement(j));
            }
        }
        for (; k < length; k++)
        {
            float value = Math.Abs(row[k]) > limit ? 0 : row[k];
            min = Math.Min(min, value);
            max = Math.Max(max, value);
        }
        return (min, max);
    }
}

/// <summary>
/// LLM.int8()-style outlier decomposition of the int8 activations (Dettmers et al. 2022, arXiv 2208.07339), decided
/// per row at run time: the values of a row whose magnitude exceeds <see cref="Ratio"/> × the RMS of the row's other
/// values are taken out of the uint8 quantization and multiplied in float32 against the weight's int8 columns
/// (s[n]·q[n, k]); the rest of the row gets a scale no longer set by them. Trained transformers have a few such
/// channels (BERT's LayerNorm outputs reach 40× their RMS in the same few dimensions on every token): with one scale
/// per row they would make every other value of the row coarse. At most <see cref="Limit"/> values per row are taken
/// out (the largest), which bounds the float32 work to Limit/K of the product. The rule looks at one row only, so a
/// row's result does not depend on the rows beside it in the batch. Ratio 0 turns it off.
/// </summary>
internal readonly record struct Int8Outliers(float Ratio, int Limit)
{
    /// <summary>
    /// The default: values above 4× the RMS of the rest of their row, at most K/64 of them (at least 4). LLM.int8()
    /// takes a fixed 6.0 on activations whose RMS is about 1; a ratio makes the rule independent of the activations'
    /// scale. 4 rather than 6: on real BERT weights it kept more retrieval top-1s (docs/PRECISION.md), and a Gaussian
    /// row has a value beyond 4σ once in 16 000, so models without outliers pay almost nothing.
    /// </summary>
    public static Int8Outliers For(int depth) => new(DefaultRatio, Math.Max(MinimumLimit, depth / LimitDivisor));

    public const float DefaultRatio = 4;
    public const int LimitDivisor = 64;
    public const int MinimumLimit = 4;
}

