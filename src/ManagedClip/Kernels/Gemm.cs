using System.Numerics.Tensors;

namespace ManagedClip.Kernels;

/// <summary>What the GEMM does with each output element after the dot product and bias.</summary>
internal enum GemmEpilogue
{
    /// <summary>y = x·Wᵀ + b</summary>
    Store,
    /// <summary>y = GELU(x·Wᵀ + b), exact erf form.</summary>
    StoreGelu,
    /// <summary>y += x·Wᵀ + b (fused residual add: y holds the residual stream).</summary>
    AddToOutput,
}

/// <summary>Y[M,N] = X[M,K] · W[N,K]ᵀ + b, with a fused epilogue.</summary>
/// <remarks>
/// Naming key, local to the GEMM files (Gemm, GemmProduct, GemmMicroKernels, PanelPacking, WeightMatrix): M rows of X
/// and Y, N output features (rows of W), K input features (the reduction). The model's own key (docs/ARCHITECTURE.md)
/// calls the same sizes B·T or ΣT, and the layer's output and input widths.
/// Nearly all of a forward pass is spent here; <see cref="GemmPlan"/> and <see cref="GemmDriver"/> explain how the work is cut up and
/// <see cref="IGemmMicroKernel{TPanel}"/> what the inner loop does.
/// </remarks>
internal static class Gemm
{
    /// <summary>Computes the product for <paramref name="rowCount"/> rows of <paramref name="input"/>.</summary>
    /// <param name="input">X [rowCount, K]</param>
    /// <param name="rowCount">M</param>
    /// <param name="weight">W [N, K], packed whole or read in place (see <see cref="WeightMatrix"/>)</param>
    /// <param name="bias">b [N], or empty for none</param>
    /// <param name="output">Y [rowCount, N]; must not overlap <paramref name="input"/></param>
    /// <param name="epilogue">What to do with each result.</param>
    public static void Multiply(ReadOnlySpan<float> input, int rowCount, WeightMatrix weight, ReadOnlySpan<float> bias,
        Span<float> output, GemmEpilogue epilogue = GemmEpilogue.Store)
        => Multiply(input, rowCount, weight, bias, output, epilogue, KernelPaths.Current);

    /// <summary>As the public overload, on a chosen code path (tests run every path).</summary>
    internal static unsafe void Multiply(ReadOnlySpan<float> input, int rowCount, WeightMatrix weight, ReadOnlySpan<float> bias,
        Span<float> output, GemmEpilogue epilogue, KernelPath path)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (!weight.HasValues) throw new InvalidOperationException("the weight holds no values (a layout-only model cannot run)");
        int n = weight.RowCount, k = weight.ColumnCount;
        if (rowCount < 0) throw new ArgumentOutOfRangeException(nameof(rowCount), rowCount, "must not be negative");
        if (input.Length < (long)rowCount * k)
            throw new ArgumentException($"input has {input.Length} elements, expected at least {rowCount}×{k}", nameof(input));
        if (output.Length < (long)rowCount * n)
            throw new ArgumentException($"output has {output.Length} elements, expected at least {rowCount}×{n}", nameof(output));
        if (!bias.IsEmpty && bias.Length != n)
            throw new ArgumentException($"bias has {bias.Length} elements, expected {n} (or none)", nameof(bias));
        if (input.Overlaps(output))
            throw new ArgumentException("output must not overlap input", nameof(output));
        if (rowCount == 0) return;
        if (weight.ElementType != PanelElement.Float32)
        {
            MultiplyLowPrecision(input, rowCount, weight, bias, output, epilogue, path, GemmInt8.KernelFor(path, weight.Int8Levels));
            return;
        }
        if (path == KernelPath.Reference)
        {
            ReferenceKernels.Gemm(input, rowCount, weight, bias, output, epilogue);
            return;
        }

        fixed (float* x = input, b = bias, y = output)
        {
            var product = new GemmProduct(x, k, rowCount, weight, bias.IsEmpty ? null : b, y, n, epilogue, path);
            Run(product, Parallelism.MaxDegree);
        }
    }

    /// <summary>
    /// A bf16 or int8 weight (<see cref="ClipPrecision"/>): <see cref="GemmBFloat16"/> or <see cref="GemmInt8"/> (with
    /// <paramref name="int8Kernel"/>), or their reference loops on <see cref="KernelPath.Reference"/>. Arguments checked.
    /// </summary>
    internal static unsafe void MultiplyLowPrecision(ReadOnlySpan<float> input, int rowCount, WeightMatrix weight,
        ReadOnlySpan<float> bias, Span<float> output, GemmEpilogue epilogue, KernelPath path, Int8Kernel int8Kernel)
    {
        if (path == KernelPath.Reference)
        {
            if (weight.ElementType == PanelElement.Int8) ReferenceKernels.GemmInt8(input, rowCount, weight, bias, output, epilogue);
            else ReferenceKernels.Gemm(input, rowCount, weight, bias, output, epilogue); // W[n, k] widened from bf16
            return;
        }
        fixed (float* x = input, b = bias, y = output)
        {
            float* biasOrNull = bias.IsEmpty ? null : b;
            if (weight.ElementType == PanelElement.Int8) GemmInt8.Multiply(x, rowCount, weight, biasOrNull, y, epilogue, path, int8Kernel);
            else GemmBFloat16.Multiply(x, rowCount, weight, biasOrNull, y, epilogue, path);
        }
    }

    /// <summary>Runs every tile task of <paramref name="product"/>, in parallel when it is worth waking workers.</summary>
    internal static void Run(in GemmProduct product, int maxDegree)
    {
        bool worthWorkers = product.MultiplyAddCount >= GemmPlan.ParallelThreshold;
        Parallelism.For(product.TaskCount, product, worthWorkers ? maxDegree : 1);
    }
}
