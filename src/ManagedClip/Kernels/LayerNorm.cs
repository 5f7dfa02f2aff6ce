using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ManagedClip.Kernels;

/// <summary>LayerNorm over the last dimension: y = (x − mean) / √(var + eps) · γ + β.</summary>
/// <remarks>
/// The corrected two-pass algorithm (Chan, Golub and LeVeque 1983) in float: a first pass estimates the mean;
/// a second sums the deviations d = x − mean and d². Σd/width is the first mean's rounding error, so adding it
/// gives a mean accurate to about an ulp of itself, and Σd²/width − (Σd/width)² is the variance without the
/// cancellation of E[x²] − mean². This keeps rows with a large common offset (or constant rows, where
/// 1/√(var + 1e-12) is huge) exact enough; tests compare with float64.
/// Hand-written rather than TensorPrimitives because the second and third passes fuse a subtraction into a sum
/// or an affine map that TensorPrimitives would need temporary buffers for.
/// </remarks>
internal static class LayerNorm
{
    /// <param name="input">X [rowCount, width]</param>
    /// <param name="gamma">γ [width]</param>
    /// <param name="beta">β [width]</param>
    /// <param name="eps">1e-6 in timm, 1e-12 in BERT</param>
    /// <param name="output">Y [rowCount, width]; may be the same memory as input</param>
    /// <param name="width">Row width.</param>
    public static void Apply(ReadOnlySpan<float> input, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps,
        Span<float> output, int width)
        => Apply(input, gamma, beta, eps, output, width, KernelPaths.Current);

    internal static unsafe void Apply(ReadOnlySpan<float> input, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps,
        Span<float> output, int width, KernelPath path)
    {
        if (width < 1) throw new ArgumentOutOfRangeException(nameof(width), width, "must be at least 1");
        if (input.Length % width != 0)
            throw new ArgumentException($"input has {input.Length} elements, not a whole number of rows of {width}", nameof(input));
        if (gamma.Length != width || beta.Length != width)
            throw new ArgumentException($"gamma and beta must have {width} elements, got {gamma.Length} and {beta.Length}");
        if (output.Length < input.Length)
            throw new ArgumentException($"output has {output.Length} elements, expected at least {input.Length}", nameof(output));
        if (input.Overlaps(output, out int offset) && offset != 0)
            throw new ArgumentException("output must be the same memory as input or not overlap it", nameof(output));
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), eps, "must be a non-negative number");

        if (path == KernelPath.Reference)
        {
            ReferenceKernels.LayerNorm(input, gamma, beta, eps, output, width);
            return;
        }
        int rowCount = input.Length / width;
        if (Parallelism.MaxDegree > 1 && input.Length >= ParallelThreshold)
        {
            // Rows are independent: one block of rows per worker (a pass over 197 rows of 768 takes ~0.1 ms).
            fixed (float* x = input, y = output, g = gamma, b = beta)
            {
                int blocks = Math.Min(Parallelism.MaxDegree, rowCount);
                Parallelism.For(blocks, new RowBlocks(x, y, g, b, eps, width, rowCount, blocks, path));
            }
            return;
        }
        for (int r = 0; r < rowCount; r++)
            NormalizeRow(input.Slice(r * width, width), gamma, beta, eps, output.Slice(r * width, width), path);
    }

    /// <summary>Below this many values a pass is too short to be worth waking a worker.</summary>
    private const int ParallelThreshold = 1 << 16;

    /// <summary>One row: mean, corrected variance, then y = (x − mean)·invstd·γ + β.</summary>
    private static void NormalizeRow(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps,
        Span<float> y, KernelPath path)
    {
        int width = x.Length;
        float mean = Sum(x, path) / width;
        var (deviationSum, squaredDeviationSum) = SumDeviations(x, mean, path);
        float correction = deviationSum / width;
        mean += correction;
        float variance = MathF.Max(0, squaredDeviationSum / width - correction * correction);
        float inverseDeviation = 1f / MathF.Sqrt(variance + eps);
        Normalize(x, mean, inverseDeviation, gamma, beta, y, path);
    }

    // One driver call per method: each is compiled (and its operator inlined) on its own.

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static float Sum(ReadOnlySpan<float> x, KernelPath path) => ElementWise.Fold(x, new Summation(), path).Result;

    /// <summary>(Σ(x − mean), Σ(x − mean)²).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static (float Sum, float SquaredSum) SumDeviations(ReadOnlySpan<float> x, float mean, KernelPath path)
    {
        var sums = ElementWise.Fold(x, new DeviationSums(mean), path);
        return (sums.Sum, sums.SquaredSum);
    }

    /// <summary>y = (x − mean)·inverseDeviation·γ + β; y may be x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static void Normalize(ReadOnlySpan<float> x, float mean, float inverseDeviation, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> beta, Span<float> y, KernelPath path) =>
        ElementWise.Map(x, gamma, beta, y, new Normalization(mean, inverseDeviation), path);

    /// <summary>One parallel call's operands (pinned pointers); <see cref="Run"/> normalises one block of rows.</summary>
    private readonly unsafe struct RowBlocks(float* x, float* y, float* gamma, float* beta, float eps, int width, int rowCount,
        int blockCount, KernelPath path) : Parallelism.IParallelBody
    {
        public void Run(int block)
        {
            int first = (int)((long)rowCount * block / blockCount), end = (int)((long)rowCount * (block + 1) / blockCount);
            var g = new ReadOnlySpan<float>(gamma, width);
            var b = new ReadOnlySpan<float>(beta, width);
            for (int r = first; r < end; r++)
                NormalizeRow(new ReadOnlySpan<float>(x + (nint)r * width, width), g, b, eps, new Span<float>(y + (nint)r * width, width), path);
        }
    }

    /// <summary>Σx.</summary>
    private struct Summation : IFold
    {
        private Vector256<float> lanes256;
        private Vector512<float> lanes512;
        public float Result;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(float x) => Result += x;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(Vector256<float> x) => lanes256 += x;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(Vector512<float> x) => lanes512 += x;
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void End256() => Result = Vector256.Sum(lanes256);
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void End512() => Result = Vector512.Sum(lanes512);
    }

    /// <summary>Σ(x − mean) and Σ(x − mean)², in one pass.</summary>
    private struct DeviationSums(float mean) : IFold
    {
        private Vector256<float> sums256, squares256;
        private Vector512<float> sums512, squares512;
        public float Sum, SquaredSum;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(float x)
        {
            float d = x - mean;
            Sum += d;
            SquaredSum += d * d;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(Vector256<float> x)
        {
            var d = x - Vector256.Create(mean);
            sums256 += d;
            squares256 = Vector256.FusedMultiplyAdd(d, d, squares256);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Add(Vector512<float> x)
        {
            var d = x - Vector512.Create(mean);
            sums512 += d;
            squares512 = Vector512.FusedMultiplyAdd(d, d, squares512);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void End256()
        {
            Sum = Vector256.Sum(sums256);
            SquaredSum = Vector256.Sum(squares256);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void End512()
        {
            Sum = Vector512.Sum(sums512);
            SquaredSum = Vector512.Sum(squares512);
        }
    }

    /// <summary>y = (x − mean)·inverseDeviation·γ + β.</summary>
    private readonly struct Normalization(float mean, float inverseDeviation) : ITernaryOperator
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public float Invoke(float x, float gamma, float beta) => (x - mean) * inverseDeviation * gamma + beta;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Invoke(Vector256<float> x, Vector256<float> gamma, Vector256<float> beta) =>
            Vector256.FusedMultiplyAdd((x - Vector256.Create(mean)) * Vector256.Create(inverseDeviation), gamma, beta);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Invoke(Vector512<float> x, Vector512<float> gamma, Vector512<float> beta) =>
            Vector512.FusedMultiplyAdd((x - Vector512.Create(mean)) * Vector512.Create(inverseDeviation), gamma, beta);
    }
}
