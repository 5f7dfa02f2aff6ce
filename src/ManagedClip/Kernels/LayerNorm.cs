using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
public static class LayerNorm
{
    /// <param name="input">X [rowCount, width]</param>
    /// <param name="gamma">γ [width]</param>
    /// <param name="beta">β [width]</param>
    /// <param name="eps">1e-6 in timm, 1e-12 in BERT</param>
    /// <param name="output">Y [rowCount, width]; may be the same memory as input</param>
    /// <param name="width">Row width.</param>
    public static void Apply(ReadOnlySpan<float> input, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, float eps,
        Span<float> output, int width)
        => Apply(input, gamma, beta, eps, output, width, KernelPaths.Best);

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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static float Sum(ReadOnlySpan<float> x, KernelPath path)
    {
        ref float start = ref MemoryMarshal.GetReference(x);
        int i = 0;
        float sum = 0;
        if (path == KernelPath.Vector512)
        {
            var sums = Vector512<float>.Zero;
            for (; i <= x.Length - Vector512<float>.Count; i += Vector512<float>.Count)
                sums += Vector512.LoadUnsafe(ref start, (nuint)i);
            sum = Vector512.Sum(sums);
        }
        else if (path == KernelPath.Vector256)
        {
            var sums = Vector256<float>.Zero;
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
                sums += Vector256.LoadUnsafe(ref start, (nuint)i);
            sum = Vector256.Sum(sums);
        }
        for (; i < x.Length; i++) sum += x[i];
        return sum;
    }

    /// <summary>(Σ(x − mean), Σ(x − mean)²).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static (float Sum, float SquaredSum) SumDeviations(ReadOnlySpan<float> x, float mean, KernelPath path)
    {
        ref float start = ref MemoryMarshal.GetReference(x);
        int i = 0;
        float sum = 0, squaredSum = 0;
        if (path == KernelPath.Vector512)
        {
            var sums = Vector512<float>.Zero;
            var squaredSums = Vector512<float>.Zero;
            var means = Vector512.Create(mean);
            for (; i <= x.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var d = Vector512.LoadUnsafe(ref start, (nuint)i) - means;
                sums += d;
                squaredSums = Vector512.FusedMultiplyAdd(d, d, squaredSums);
            }
            sum = Vector512.Sum(sums);
            squaredSum = Vector512.Sum(squaredSums);
        }
        else if (path == KernelPath.Vector256)
        {
            var sums = Vector256<float>.Zero;
            var squaredSums = Vector256<float>.Zero;
            var means = Vector256.Create(mean);
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var d = Vector256.LoadUnsafe(ref start, (nuint)i) - means;
                sums += d;
                squaredSums = Vector256.FusedMultiplyAdd(d, d, squaredSums);
            }
            sum = Vector256.Sum(sums);
            squaredSum = Vector256.Sum(squaredSums);
        }
        for (; i < x.Length; i++)
        {
            float d = x[i] - mean;
            sum += d;
            squaredSum += d * d;
        }
        return (sum, squaredSum);
    }

    /// <summary>y = (x − mean)·inverseDeviation·γ + β; y may be x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // optimised on first call: see KernelPaths
    private static void Normalize(ReadOnlySpan<float> x, float mean, float inverseDeviation, ReadOnlySpan<float> gamma,
        ReadOnlySpan<float> beta, Span<float> y, KernelPath path)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float gs = ref MemoryMarshal.GetReference(gamma);
        ref float bs = ref MemoryMarshal.GetReference(beta);
        ref float ys = ref MemoryMarshal.GetReference(y);
        int i = 0;
        if (path == KernelPath.Vector512)
        {
            var means = Vector512.Create(mean);
            var scale = Vector512.Create(inverseDeviation);
            for (; i <= x.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                var normalized = (Vector512.LoadUnsafe(ref xs, (nuint)i) - means) * scale;
                Vector512.FusedMultiplyAdd(normalized, Vector512.LoadUnsafe(ref gs, (nuint)i), Vector512.LoadUnsafe(ref bs, (nuint)i))
                    .StoreUnsafe(ref ys, (nuint)i);
            }
        }
        else if (path == KernelPath.Vector256)
        {
            var means = Vector256.Create(mean);
            var scale = Vector256.Create(inverseDeviation);
            for (; i <= x.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                var normalized = (Vector256.LoadUnsafe(ref xs, (nuint)i) - means) * scale;
                Vector256.FusedMultiplyAdd(normalized, Vector256.LoadUnsafe(ref gs, (nuint)i), Vector256.LoadUnsafe(ref bs, (nuint)i))
                    .StoreUnsafe(ref ys, (nuint)i);
            }
        }
        for (; i < x.Length; i++) y[i] = (x[i] - mean) * inverseDeviation * gamma[i] + beta[i];
    }
}
