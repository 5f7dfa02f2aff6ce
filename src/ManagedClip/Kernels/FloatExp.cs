using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ManagedClip.Kernels;

/// <summary>
/// eˣ in float, within 1.3 ulps (tested), for softmax and the erf of GELU; scalar and vectorised with the
/// same formula, so every code path gives the same values. Hand-written because Vector512.Exp /
/// TensorPrimitives.Exp evaluate in double precision (widen, compute, narrow: tried, slower, see
/// docs/benchmarks/design-measurements-2026-12-01.md), and MathF.Exp is a call into the C runtime.
/// </summary>
/// <remarks>
/// The textbook reduction: eˣ = 2ⁿ · eʳ with n = round(x / ln 2) and r = x − n·ln 2 in [−ln2/2, ln2/2]. ln 2 is
/// split into a high part with trailing zero bits (so n·ln2High is exact) and a low part (Cody and Waite, 1980).
/// eʳ is its Taylor polynomial to degree 7, whose truncation error is r⁸/8! ≤ 5e-9 relative; 2ⁿ is built
/// directly in the exponent bits. Inputs are clamped to [−87.3, 88.7], where 2ⁿ stays a normal float: below,
/// the result is ~1e-38 instead of 0, which no sum of exponentials can notice.
/// </remarks>
internal static class FloatExp
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693145751953125f;         // ln 2 rounded to 16 significant bits
    private const float Ln2Low = 1.42860682030941723212e-6f;  // ln 2 − Ln2High
    private const float RoundingShift = 12582912f;            // 1.5·2²³: adding it rounds to an integer
    private const float Lowest = -87.3f, Highest = 88.7f;

    // 1/k! for k = 2..7
    private const float C2 = 1f / 2, C3 = 1f / 6, C4 = 1f / 24, C5 = 1f / 120, C6 = 1f / 720, C7 = 1f / 5040;

    public static float Evaluate(float x)
    {
        x = Math.Clamp(x, Lowest, Highest);
        float shifted = MathF.FusedMultiplyAdd(x, Log2E, RoundingShift);
        float n = shifted - RoundingShift;
        float r = MathF.FusedMultiplyAdd(n, -Ln2High, x);
        r = MathF.FusedMultiplyAdd(n, -Ln2Low, r);
        float p = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(
            MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(C7, r, C6), r, C5), r, C4), r, C3),
            r, C2), r, 1f), r, 1f);
        float twoToN = BitConverter.Int32BitsToSingle((BitConverter.SingleToInt32Bits(shifted) + 127) << 23);
        return p * twoToN;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Evaluate(Vector512<float> x)
    {
        x = Vector512.Clamp(x, Vector512.Create(Lowest), Vector512.Create(Highest));
        // n = round(x·log₂e), via the float adder: the shifted sum holds n in its low mantissa bits.
        var shifted = Vector512.FusedMultiplyAdd(x, Vector512.Create(Log2E), Vector512.Create(RoundingShift));
        var n = shifted - Vector512.Create(RoundingShift);
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2High), x);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Low), r);

        var p = Vector512.Create(C7);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C6));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C5));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C4));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C3));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(C2));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512<float>.One);

        // 2ⁿ: the low bits of `shifted` are n (two's complement); move them into the exponent field.
        var twoToN = Vector512.ShiftLeft(shifted.AsInt32() + Vector512.Create(127), 23).AsSingle();
        return p * twoToN;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Evaluate(Vector256<float> x)
    {
        x = Vector256.Clamp(x, Vector256.Create(Lowest), Vector256.Create(Highest));
        var shifted = Vector256.FusedMultiplyAdd(x, Vector256.Create(Log2E), Vector256.Create(RoundingShift));
        var n = shifted - Vector256.Create(RoundingShift);
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2High), x);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Low), r);

        var p = Vector256.Create(C7);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C6));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C5));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C4));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C3));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(C2));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256<float>.One);

        var twoToN = Vector256.ShiftLeft(shifted.AsInt32() + Vector256.Create(127), 23).AsSingle();
        return p * twoToN;
    }
}
