using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ManagedClip.Kernels;

/// <summary>GELU in its exact erf form, as PyTorch's default nn.GELU and BERT's "gelu".</summary>
internal static class Activations
{
    private const float InverseSqrt2 = 0.70710678118654752f;

    /// <summary>GELU(x) = x/2 · (1 + erf(x/√2)), with a single-precision erf accurate to about 1e-7.</summary>
    public static float Gelu(float x) => 0.5f * x * (1f + FloatErf.Evaluate(x * InverseSqrt2));

    /// <summary>Applies GELU in place.</summary>
    public static void Gelu(Span<float> values) => Gelu(values, KernelPaths.Current);

    /// <summary>GELU in place on a chosen code path; hand-written because TensorPrimitives has no erf.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    internal static void Gelu(Span<float> values, KernelPath path)
    {
        if (path == KernelPath.Reference) ReferenceKernels.Gelu(values);
        else ElementWise.Map(values, values, new GeluOperator(), path);
    }

    /// <summary>GELU of 16 lanes, the same formula as the scalar one (the GEMM's epilogue calls it on finished tiles).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Gelu(Vector512<float> x) =>
        Vector512.Create(0.5f) * x * (Vector512<float>.One + FloatErf.Evaluate(x * Vector512.Create(InverseSqrt2)));

    /// <summary>GELU of 8 lanes, the same formula.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Gelu(Vector256<float> x) =>
        Vector256.Create(0.5f) * x * (Vector256<float>.One + FloatErf.Evaluate(x * Vector256.Create(InverseSqrt2)));

    private readonly struct GeluOperator : IUnaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x) => Gelu(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Invoke(Vector256<float> x) => Gelu(x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Invoke(Vector512<float> x) => Gelu(x);
    }
}
