using System.Buffers;
using ManagedClip.IO;
using ManagedClip.Kernels;

namespace ManagedClip.Model;

/// <summary>
/// A PyTorch <c>nn.Linear</c>: y = x·Wᵀ + b, with W packed once at load time.
/// Both towers are built from these and <see cref="LayerNormWeights"/>; the kernels do the arithmetic.
/// </summary>
internal sealed class Linear
{
    private readonly PackedMatrix weight; // [outputs, inputs]
    private readonly float[] bias;        // [outputs], or empty when the layer has none

    private Linear(PackedMatrix weight, float[] bias)
    {
        this.weight = weight;
        this.bias = bias;
    }

    /// <summary>Output features.</summary>
    public int OutputCount => weight.RowCount;

    /// <summary>Loads <c>{name}.weight</c> [outputs, inputs] and, if <paramref name="hasBias"/>, <c>{name}.bias</c> [outputs].</summary>
    public static Linear Load(TensorStore store, string name, int outputCount, int inputCount, bool hasBias) =>
        LoadStacked(store, [name], outputCount, inputCount, hasBias);

    /// <summary>A layer from weights already read: W [outputs, inputs] row-major, b [outputs] or empty.</summary>
    public static Linear Create(ReadOnlySpan<float> weight, int outputCount, int inputCount, ReadOnlySpan<float> bias) =>
        new(PackedMatrix.Pack(weight, outputCount, inputCount), bias.ToArray());

    /// <summary>
    /// Stacks several Linear layers with the same input into one (their weights row after row), so a single GEMM
    /// computes all their outputs side by side in each row: BERT's query, key and value become one [3H, H] product.
    /// </summary>
    public static Linear LoadStacked(TensorStore store, string[] names, int outputCount, int inputCount, bool hasBias = true)
    {
        // The row-major weights only live until they are packed: a pooled buffer, filled by reads of the file.
        int partSize = outputCount * inputCount;
        var weights = ArrayPool<float>.Shared.Rent(names.Length * partSize); // [parts·outputs, inputs]
        try
        {
            var biases = hasBias ? new float[names.Length * outputCount] : []; // [parts·outputs]
            for (int i = 0; i < names.Length; i++)
            {
                store.GetFloat32(names[i] + ".weight", outputCount, inputCount); // shape check
                store.CopyFloat32(names[i] + ".weight", weights.AsSpan(i * partSize, partSize));
                if (hasBias) store.GetFloat32(names[i] + ".bias", outputCount).CopyTo(biases.AsSpan(i * outputCount));
            }
            return new(PackedMatrix.Pack(weights.AsSpan(0, names.Length * partSize), names.Length * outputCount, inputCount), biases);
        }
        finally
        {
            ArrayPool<float>.Shared.Return(weights);
        }
    }

    /// <summary>Applies the layer to <paramref name="rowCount"/> rows: output [rows, outputs] from input [rows, inputs].</summary>
    public void Apply(ReadOnlySpan<float> input, int rowCount, Span<float> output, GemmEpilogue epilogue = GemmEpilogue.Store) =>
        Gemm.Multiply(input.Slice(0, rowCount * weight.ColumnCount), rowCount, weight, bias,
            output.Slice(0, rowCount * weight.RowCount), epilogue);
}

/// <summary>A PyTorch <c>nn.LayerNorm</c> over the last dimension.</summary>
internal sealed class LayerNormWeights
{
    private readonly float[] gamma; // [width]
    private readonly float[] beta;  // [width]
    private readonly float eps;

    private LayerNormWeights(float[] gamma, float[] beta, float eps)
    {
        this.gamma = gamma;
        this.beta = beta;
        this.eps = eps;
    }

    /// <summary>Loads <c>{name}.weight</c> and <c>{name}.bias</c>, both [width].</summary>
    public static LayerNormWeights Load(TensorStore store, string name, int width, float eps) =>
        new(store.GetFloat32(name + ".weight", width).ToArray(), store.GetFloat32(name + ".bias", width).ToArray(), eps);

    /// <summary>Normalises <paramref name="rowCount"/> rows; <paramref name="output"/> may be the input itself.</summary>
    public void Apply(ReadOnlySpan<float> input, int rowCount, Span<float> output)
    {
        int width = gamma.Length;
        LayerNorm.Apply(input.Slice(0, rowCount * width), gamma, beta, eps, output.Slice(0, rowCount * width), width);
    }
}

/// <summary>Loads a tower's repeated layers.</summary>
internal static class Layers
{
    /// <summary>
    /// Loads <paramref name="count"/> independent layers on all cores (packing weights is most of cold start).
    /// A failure surfaces as the layer's own exception (e.g. a shape error naming the tensor), not an AggregateException.
    /// </summary>
    public static T[] LoadAll<T>(int count, Func<int, T> load)
    {
        var layers = new T[count];
        try
        {
            Parallel.For(0, count, i => layers[i] = load(i));
        }
        catch (AggregateException e)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
        }
        return layers;
    }
}
