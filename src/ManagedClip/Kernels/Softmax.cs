using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedClip.Kernels;

/// <summary>Numerically stable softmax: subtract the row maximum before exponentiating.</summary>
/// <remarks>
/// Three passes: maximum, exponentials with their sum (fused), scaling by 1/sum. Hand-written: with
/// TensorPrimitives the same needs more passes (max, subtract, scale, exp, sum, divide), and its exp works in
/// double precision; <see cref="FloatExp"/> is several times faster.
/// </remarks>
public static class Softmax
{
    /// <summary>16 zeros then 16 all-ones lanes: loading 16 from offset r selects the last r lanes.</summary>
    private static readonly int[] TailMasks = [.. Enumerable.Repeat(0, 16), .. Enumerable.Repeat(-1, 16)];

    /// <summary>Softmax of one row, in place.</summary>
    public static void Apply(Span<float> row) => Apply(row, 1f, KernelPaths.Best);

    /// <summary>softmax(scale · row), in place, on a chosen code path (attention folds 1/√headSize in here).</summary>
    internal static void Apply(Span<float> row, float scale, KernelPath path)
    {
        if (row.IsEmpty) return;
        float max = Max(row, path);
        float sum = ExponentiateAndSum(row, max, scale, path);
        Scale(row, 1f / sum, path);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static float Max(ReadOnlySpan<float> row, KernelPath path)
    {
        ref float start = ref MemoryMarshal.GetReference(row);
        int i = 0;
        float max = float.NegativeInfinity;
        if (path == KernelPath.Vector512 && row.Length >= Vector512<float>.Count)
        {
            var maxima = Vector512.Create(float.NegativeInfinity);
            for (; i <= row.Length - Vector512<float>.Count; i += Vector512<float>.Count)
                maxima = Vector512.Max(maxima, Vector512.LoadUnsafe(ref start, (nuint)i));
            var halves = Vector256.Max(maxima.GetLower(), maxima.GetUpper());
            var quarters = Vector128.Max(halves.GetLower(), halves.GetUpper());
            for (int lane = 0; lane < Vector128<float>.Count; lane++) max = MathF.Max(max, quarters[lane]);
        }
        else if (path == KernelPath.Vector256 && row.Length >= Vector256<float>.Count)
        {
            var maxima = Vector256.Create(float.NegativeInfinity);
            for (; i <= row.Length - Vector256<float>.Count; i += Vector256<float>.Count)
                maxima = Vector256.Max(maxima, Vector256.LoadUnsafe(ref start, (nuint)i));
            var halves = Vector128.Max(maxima.GetLower(), maxima.GetUpper());
            for (int lane = 0; lane < Vector128<float>.Count; lane++) max = MathF.Max(max, halves[lane]);
        }
        for (; i < row.Length; i++) max = MathF.Max(max, row[i]);
        return max;
    }

    /// <summary>row[i] = exp(scale·(row[i] − max)); returns the sum. Every exponent is ≤ 0, so nothing overflows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static float ExponentiateAndSum(Span<float> row, float max, float scale, KernelPath path)
    {
        ref float start = ref MemoryMarshal.GetReference(row);
        int i = 0;
        float sum = 0;
        if (path == KernelPath.Vector512)
        {
            var sums = Vector512<float>.Zero;
            var maxima = Vector512.Create(max);
            var scales = Vector512.Create(scale);
            // The last rest < 16 values (an attention row of 197 keys leaves 5) go in one more vector, the row's
            // last 16 taken before the loop overwrites the ones it shares with the last whole vector.
            int rest = row.Length % Vector512<float>.Count;
            nuint last = (nuint)(row.Length - Vector512<float>.Count);
            var lastValues = row.Length > Vector512<float>.Count && rest > 0
                ? FloatExp.Evaluate((Vector512.LoadUnsafe(ref start, last) - maxima) * scales)
                : default;
            for (; i <= row.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var e = FloatExp.Evaluate((Vector512.LoadUnsafe(ref start, (nuint)i) - maxima) * scales);
                e.StoreUnsafe(ref start, (nuint)i);
                sums += e;
            }
            if (row.Length > Vector512<float>.Count && rest > 0)
            {
                // Lanes 16 − rest … 15 are the new ones; the others are already stored (and summed).
                var isNew = Vector512.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(TailMasks), (nuint)rest).AsSingle();
                Vector512.ConditionalSelect(isNew, lastValues, Vector512.LoadUnsafe(ref start, last)).StoreUnsafe(ref start, last);
                sums += lastValues & isNew;
                i = row.Length;
            }
            sum = Vector512.Sum(sums);
        }
        else if (path == KernelPath.Vector256)
        {
            var sums = Vector256<float>.Zero;
            var maxima = Vector256.Create(max);
            var scales = Vector256.Create(scale);
            for (; i <= row.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var e = FloatExp.Evaluate((Vector256.LoadUnsafe(ref start, (nuint)i) - maxima) * scales);
                e.StoreUnsafe(ref start, (nuint)i);
                sums += e;
            }
            sum = Vector256.Sum(sums);
        }
        for (; i < row.Length; i++)
        {
            row[i] = FloatExp.Evaluate((row[i] - max) * scale);
            sum += row[i];
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static void Scale(Span<float> row, float factor, KernelPath path)
    {
        ref float start = ref MemoryMarshal.GetReference(row);
        int i = 0;
        if (path == KernelPath.Vector512)
        {
            for (; i <= row.Length - Vector512<float>.Count; i += Vector512<float>.Count)
                (Vector512.LoadUnsafe(ref start, (nuint)i) * factor).StoreUnsafe(ref start, (nuint)i);
        }
        else if (path == KernelPath.Vector256)
        {
            for (; i <= row.Length - Vector256<float>.Count; i += Vector256<float>.Count)
                (Vector256.LoadUnsafe(ref start, (nuint)i) * factor).StoreUnsafe(ref start, (nuint)i);
        }
        for (; i < row.Length; i++) row[i] *= factor;
    }
}
