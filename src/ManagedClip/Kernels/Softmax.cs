using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ManagedClip.Kernels;

/// <summary>Numerically stable softmax: subtract the row maximum before exponentiating.</summary>
/// <remarks>
/// Three passes: maximum, exponentials with their sum (fused), scaling by 1/sum. Hand-written: with
/// TensorPrimitives the same needs more passes (max, subtract, scale, exp, sum, divide), and its exp works in
/// double precision, where <see cref="FloatExp"/> stays in float.
/// </remarks>
internal static class Softmax
{
    /// <summary>Softmax of one row, in place.</summary>
    public static void Apply(Span<float> row) => Apply(row, 1f, KernelPaths.Current);

    /// <summary>softmax(scale · row), in place, on a chosen code path (attention folds 1/√headSize in here).</summary>
    internal static void Apply(Span<float> row, float scale, KernelPath path)
    {
        if (row.IsEmpty) return;
        if (path == KernelPath.Reference)
        {
            ReferenceKernels.Softmax(row, scale);
            return;
        }
        float max = Max(row, path);
        float sum = ExponentiateAndSum(row, max, scale, path);
        Scale(row, 1f / sum, path);
    }

    // One driver call per method: each is compiled (and its operator inlined) on its own.

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static float Max(ReadOnlySpan<float> row, KernelPath path) => ElementWise.Fold(row, new Maximum(), path).Result;

    /// <summary>row[i] = exp(scale·(row[i] − max)); returns their sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static float ExponentiateAndSum(Span<float> row, float max, float scale, KernelPath path) =>
        ElementWise.MapAndSum(row, new ScaledExponential(max, scale), path);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static void Scale(Span<float> row, float factor, KernelPath path) => ElementWise.Map(row, row, new Multiply(factor), path);

    /// <summary>The largest element.</summary>
    private struct Maximum() : IFold
    {
        private Vector256<float> lanes256 = Vector256.Create(float.NegativeInfinity);
        private Vector512<float> lanes512 = Vector512.Create(float.NegativeInfinity);
        public float Result = float.NegativeInfinity;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(float x) => Result = MathF.Max(Result, x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(Vector256<float> x) => lanes256 = Vector256.Max(lanes256, x);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(Vector512<float> x) => lanes512 = Vector512.Max(lanes512, x);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void End256() => AddLanes(Vector128.Max(lanes256.GetLower(), lanes256.GetUpper()));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void End512()
        {
            var halves = Vector256.Max(lanes512.GetLower(), lanes512.GetUpper());
            AddLanes(Vector128.Max(halves.GetLower(), halves.GetUpper()));
        }

        private void AddLanes(Vector128<float> lanes)
        {
            for (int lane = 0; lane < Vector128<float>.Count; lane++) Result = MathF.Max(Result, lanes[lane]);
        }
    }

    /// <summary>exp(scale·(x − max)): every exponent is ≤ 0, so nothing overflows.</summary>
    private readonly struct ScaledExponential(float max, float scale) : IUnaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x) => FloatExp.Evaluate((x - max) * scale);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Invoke(Vector256<float> x) => FloatExp.Evaluate((x - Vector256.Create(max)) * Vector256.Create(scale));
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Invoke(Vector512<float> x) => FloatExp.Evaluate((x - Vector512.Create(max)) * Vector512.Create(scale));
    }

    private readonly struct Multiply(float factor) : IUnaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x) => x * factor;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Invoke(Vector256<float> x) => x * factor;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Invoke(Vector512<float> x) => x * factor;
    }
}
