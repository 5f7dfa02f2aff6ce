using System.Numerics.Tensors;

namespace ManagedClip.Kernels;

/// <summary>What the GEMM does with each output element after the dot product and bias.</summary>
public enum GemmEpilogue
{
    /// <summary>y = x·Wᵀ + b</summary>
    Store,
    /// <summary>y = GELU(x·Wᵀ + b), exact erf form.</summary>
    StoreGelu,
    /// <summary>y += x·Wᵀ + b (fused residual add: y holds the residual stream).</summary>
    AddToOutput,
}

/// <summary>A weight matrix W [N, K] (PyTorch Linear layout) prepared once at load time for <see cref="Gemm"/>.</summary>
public sealed class PackedMatrix
{
    internal readonly float[] Data; // [N, K] row-major (TODO kernels: micro-kernel panel layout)

    /// <summary>Output features N.</summary>
    public int RowCount { get; }

    /// <summary>Input features K.</summary>
    public int ColumnCount { get; }

    private PackedMatrix(float[] data, int rowCount, int columnCount)
    {
        Data = data;
        RowCount = rowCount;
        ColumnCount = columnCount;
    }

    /// <summary>Packs W [rowCount, columnCount], row-major as stored in the checkpoint.</summary>
    public static PackedMatrix Pack(ReadOnlySpan<float> weight, int rowCount, int columnCount)
    {
        if (weight.Length != (long)rowCount * columnCount)
            throw new ArgumentException($"weight has {weight.Length} elements, expected {rowCount}×{columnCount}");
        return new PackedMatrix(weight.ToArray(), rowCount, columnCount);
    }
}

/// <summary>Y[M,N] = X[M,K] · W[N,K]ᵀ + b, with a fused epilogue.</summary>
public static class Gemm
{
    /// <summary>Computes the product for <paramref name="rowCount"/> rows of <paramref name="input"/>.</summary>
    /// <param name="input">X [rowCount, K]</param>
    /// <param name="rowCount">M</param>
    /// <param name="weight">W [N, K], packed</param>
    /// <param name="bias">b [N], or empty for none</param>
    /// <param name="output">Y [rowCount, N]</param>
    /// <param name="epilogue">What to do with each result.</param>
    public static void Multiply(ReadOnlySpan<float> input, int rowCount, PackedMatrix weight, ReadOnlySpan<float> bias,
        Span<float> output, GemmEpilogue epilogue = GemmEpilogue.Store)
    {
        int n = weight.RowCount, k = weight.ColumnCount;
        for (int i = 0; i < rowCount; i++)
        {
            var x = input.Slice(i * k, k);
            var y = output.Slice(i * n, n);
            for (int j = 0; j < n; j++)
            {
                float v = TensorPrimitives.Dot(x, weight.Data.AsSpan(j * k, k));
                if (!bias.IsEmpty) v += bias[j];
                y[j] = epilogue switch
                {
                    GemmEpilogue.StoreGelu => Activations.Gelu(v),
                    GemmEpilogue.AddToOutput => y[j] + v,
                    _ => v,
                };
            }
        }
    }
}
