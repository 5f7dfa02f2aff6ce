using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedClip.Kernels;

/// <summary>GELU in its exact erf form, as PyTorch's default nn.GELU and BERT's "gelu".</summary>
public static class Activations
{
    private const float InverseSqrt2 = 0.70710678118654752f;

    /// <summary>GELU(x) = x/2 · (1 + erf(x/√2)), with a single-precision erf accurate to about 1e-7.</summary>
    public static float Gelu(float x) => 0.5f * x * (1f + FloatErf.Evaluate(x * InverseSqrt2));

    /// <summary>Applies GELU in place.</summary>
    public static void Gelu(Span<float> values) => Gelu(values, KernelPaths.Best);

    /// <summary>GELU in place on a chosen code path; hand-written because TensorPrimitives has no erf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    internal static void Gelu(Span<float> values, KernelPath path)
    {
        ref float start = ref MemoryMarshal.GetReference(values);
        int i = 0;
        if (path == KernelPath.Vector512)
        {
            for (; i <= values.Length - Vector512<float>.Count; i += Vector512<float>.Count)
                Gelu(Vector512.LoadUnsafe(ref start, (nuint)i)).StoreUnsafe(ref start, (nuint)i);
        }
        else if (path == KernelPath.Vector256)
        {
            for (; i <= values.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var x = Vector256.LoadUnsafe(ref start, (nuint)i);
                var y = Vector256.Create(0.5f) * x * (Vector256<float>.One + FloatErf.Evaluate(x * Vector256.Create(InverseSqrt2)));
                y.StoreUnsafe(ref start, (nuint)i);
            }
        }
        for (; i < values.Length; i++) values[i] = Gelu(values[i]);
    }

    /// <summary>GELU of 16 lanes, the same formula as the scalar one (the GEMM's epilogue calls it on finished tiles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Gelu(Vector512<float> x) =>
        Vector512.Create(0.5f) * x * (Vector512<float>.One + FloatErf.Evaluate(x * Vector512.Create(InverseSqrt2)));

    /// <summary>erf(x) in double precision (error below 1e-15).</summary>
    /// <remarks>
    /// For |x| &lt; 2.5 the series erf(x) = 2/√π · e^(−x²) · Σₙ (2x²)ⁿ·x / (1·3·5···(2n+1)), whose terms are all
    /// positive (no cancellation). Beyond, erfc(x) = e^(−x²)/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …)))), a
    /// continued fraction that converges fast for large x, evaluated backwards from 60 levels; erf = 1 − erfc.
    /// </remarks>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double a = Math.Abs(x);
        double result;
        if (a < 2.5)
        {
            double term = a, sum = a, twoASquared = 2 * a * a;
            for (int n = 1; term > sum * 1e-17; n++)
            {
                term *= twoASquared / (2 * n + 1);
                sum += term;
            }
            result = 2 / Math.Sqrt(Math.PI) * Math.Exp(-a * a) * sum;
        }
        else if (a < 6)
        {
            double fraction = a;
            for (int n = 60; n >= 1; n--) fraction = a + n / 2.0 / fraction;
            result = 1 - Math.Exp(-a * a) / Math.Sqrt(Math.PI) / fraction;
        }
        else
        {
            result = 1; // erfc(6) ≈ 2e-17, below half an ulp of 1
        }
        return Math.CopySign(result, x);
    }
}
