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
        var (min, max) = Range(row, length);
        if (!float.IsFinite(max - min))
        {
            new Span<byte>(quantized, length).Clear();
            return (float.NaN, 0);
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
        return (scale, zeroPoint);
    }

    /// <summary>min(0, x) and max(0, x) over the row; NaN if the row holds a NaN (checked apart: vminps does not carry it).</summary>
    private static unsafe (float Min, float Max) Range(float* row, int length)
    {
        float min = 0, max = 0; // the range always includes 0
        int k = 0;
        if (Vector256.IsHardwareAccelerated && length >= 8)
        {
            Vector256<float> mins = Vector256<float>.Zero, maxes = Vector256<float>.Zero;
            var numbers = Vector256<int>.AllBitsSet; // lanes that have seen no NaN
            for (; k + 8 <= length; k += 8)
            {
                var values = Vector256.Load(row + k);
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
            min = Math.Min(min, row[k]);
            max = Math.Max(max, row[k]);
        }
        return (min, max);
    }
}
